package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// Client is the control API across HTTP; it implements Service.
type Client struct {
	e     Endpoints
	token string
	// base and hc are for the routes that stream (Logs).
	base *url.URL
	hc   *http.Client
}

var _ Service = (*Client)(nil)

// clientTimeout bounds a whole call when the caller brings no client. It is
// longer than the runtime's own RequestTimeout, so that a slow restart is
// answered by the runtime (503, naming what it waited for) rather than cut
// short by the client.
const clientTimeout = RequestTimeout + 15*time.Second

// NewClient returns a client of the runtime at addr ("127.0.0.1:9250")
// that authenticates with token. A nil hc means a client of its own with a
// timeout, never http.DefaultClient, which waits forever.
func NewClient(addr, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, fmt.Errorf("parse runtime address %q: %w", addr, err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: clientTimeout}
	}
	action := func(verb string) func(ServiceRequest) string {
		return func(r ServiceRequest) string {
			path := "/api/v1/services/" + url.PathEscape(r.Name) + "/" + verb
			if r.Node != "" {
				path = "/api/v1/nodes/" + url.PathEscape(r.Node) + path[len("/api/v1"):]
			}
			return path
		}
	}
	list := func(r ListRequest) string {
		switch {
		case r.All:
			return "/api/v1/services?all=1"
		case r.Node != "":
			return "/api/v1/nodes/" + url.PathEscape(r.Node) + "/services"
		}
		return "/api/v1/services"
	}
	password := func(r PasswordRequest) string { return "/api/v1/users/" + url.PathEscape(r.Name) + "/password" }
	return &Client{token: token, base: u, hc: hc, e: Endpoints{
		List:    transport.ClientRoute[ListRequest, []supervisor.Status](hc, u, http.MethodGet, list),
		Nodes:   transport.ClientRoute[endpoint.Empty, []registry.Node](hc, u, http.MethodGet, func(endpoint.Empty) string { return "/api/v1/nodes" }),
		Kill:    transport.ClientRoute[ServiceRequest, supervisor.Status](hc, u, http.MethodPost, action(VerbKill)),
		Run:     transport.ClientRoute[ServiceRequest, supervisor.Status](hc, u, http.MethodPost, action(VerbRun)),
		Restart: transport.ClientRoute[ServiceRequest, supervisor.Status](hc, u, http.MethodPost, action(VerbRestart)),
		Reload:  transport.ClientRoute[endpoint.Empty, ReloadReport](hc, u, http.MethodPost, func(endpoint.Empty) string { return "/api/v1/reload" }),

		SetPassword: transport.ClientRoute[PasswordRequest, endpoint.Empty](hc, u, http.MethodPut, password),
	}}, nil
}

func (c *Client) ctx(ctx context.Context) context.Context { return transport.WithBearer(ctx, c.token) }

// List implements Service.
func (c *Client) List(ctx context.Context, req ListRequest) ([]supervisor.Status, error) {
	return endpoint.Call[ListRequest, []supervisor.Status](c.ctx(ctx), c.e.List, req)
}

// Nodes implements Service.
func (c *Client) Nodes(ctx context.Context, req endpoint.Empty) ([]registry.Node, error) {
	return endpoint.Call[endpoint.Empty, []registry.Node](c.ctx(ctx), c.e.Nodes, req)
}

// Kill implements Service.
func (c *Client) Kill(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return endpoint.Call[ServiceRequest, supervisor.Status](c.ctx(ctx), c.e.Kill, req)
}

// Run implements Service.
func (c *Client) Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return endpoint.Call[ServiceRequest, supervisor.Status](c.ctx(ctx), c.e.Run, req)
}

// Restart implements Service.
func (c *Client) Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return endpoint.Call[ServiceRequest, supervisor.Status](c.ctx(ctx), c.e.Restart, req)
}

// Reload implements Service.
func (c *Client) Reload(ctx context.Context, req endpoint.Empty) (ReloadReport, error) {
	return endpoint.Call[endpoint.Empty, ReloadReport](c.ctx(ctx), c.e.Reload, req)
}

// SetPassword implements Service.
func (c *Client) SetPassword(ctx context.Context, req PasswordRequest) (endpoint.Empty, error) {
	return endpoint.Call[PasswordRequest, endpoint.Empty](c.ctx(ctx), c.e.SetPassword, req)
}
