package runtime

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Client is the control API across HTTP; it implements Control.
type Client struct {
	e     Endpoints
	token string
}

var _ Control = (*Client)(nil)

// NewClient returns a client of the runtime at addr ("127.0.0.1:9250")
// that authenticates with token.
func NewClient(addr, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, fmt.Errorf("parse runtime address %q: %w", addr, err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	action := func(verb string) func(ServiceRequest) string {
		return func(r ServiceRequest) string { return "/api/v1/services/" + url.PathEscape(r.Name) + "/" + verb }
	}
	return &Client{token: token, e: Endpoints{
		List:    transport.ClientRoute[endpoint.Empty, []Status](hc, u, http.MethodGet, func(endpoint.Empty) string { return "/api/v1/services" }),
		Kill:    transport.ClientRoute[ServiceRequest, Status](hc, u, http.MethodPost, action("kill")),
		Run:     transport.ClientRoute[ServiceRequest, Status](hc, u, http.MethodPost, action("run")),
		Restart: transport.ClientRoute[ServiceRequest, Status](hc, u, http.MethodPost, action("restart")),
	}}, nil
}

func (c *Client) ctx(ctx context.Context) context.Context { return transport.WithBearer(ctx, c.token) }

// List implements Control.
func (c *Client) List(ctx context.Context, req endpoint.Empty) ([]Status, error) {
	return endpoint.Call[endpoint.Empty, []Status](c.ctx(ctx), c.e.List, req)
}

// Kill implements Control.
func (c *Client) Kill(ctx context.Context, req ServiceRequest) (Status, error) {
	return endpoint.Call[ServiceRequest, Status](c.ctx(ctx), c.e.Kill, req)
}

// Run implements Control.
func (c *Client) Run(ctx context.Context, req ServiceRequest) (Status, error) {
	return endpoint.Call[ServiceRequest, Status](c.ctx(ctx), c.e.Run, req)
}

// Restart implements Control.
func (c *Client) Restart(ctx context.Context, req ServiceRequest) (Status, error) {
	return endpoint.Call[ServiceRequest, Status](c.ctx(ctx), c.e.Restart, req)
}
