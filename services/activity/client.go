package activity

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Client is the activity service across HTTP; it implements Service. Pass
// the caller's token with transport.WithBearer.
type Client struct {
	e Endpoints
}

var _ Service = (*Client)(nil)

// callTimeout bounds one call of the default client: a page is at most
// MaxLimit small entries.
const callTimeout = 30 * time.Second

// NewClient returns a client of the activity service at base
// ("http://host:port"), calling through hc, or, when hc is nil, a client
// with timeouts (transport.NewHTTPClient).
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse activity url %q: %w", base, err)
	}
	if hc == nil {
		hc = transport.NewHTTPClient(callTimeout)
	}
	c := &Client{}
	API(&c.e).Dial(hc, u)
	return c, nil
}

// List implements Service.
func (c *Client) List(ctx context.Context, req ListRequest) (Page, error) {
	return endpoint.Call[ListRequest, Page](ctx, c.e.List, req)
}
