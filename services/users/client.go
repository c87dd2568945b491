package users

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Client is the users service across HTTP; it implements Service, so callers
// cannot tell it from the service in their own process. Pass the caller's
// token with transport.WithBearer.
type Client struct {
	e Endpoints
}

var _ Service = (*Client)(nil)

// NewClient returns a client of the users service at base
// ("http://host:port"), calling through hc, or, when hc is nil, a client
// with timeouts (transport.NewHTTPClient).
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse users url %q: %w", base, err)
	}
	if hc == nil {
		hc = transport.NewHTTPClient(callTimeout)
	}
	c := &Client{}
	API(&c.e).Dial(hc, u)
	return c, nil
}

// callTimeout bounds one call of the default client: a login may wait for
// a password-check slot and be held back after failures, for seconds, not
// minutes.
const callTimeout = 30 * time.Second

// Login implements Service.
func (c *Client) Login(ctx context.Context, req LoginRequest) (Token, error) {
	return endpoint.Call[LoginRequest, Token](ctx, c.e.Login, req)
}

// Me implements Service.
func (c *Client) Me(ctx context.Context, req endpoint.Empty) (User, error) {
	return endpoint.Call[endpoint.Empty, User](ctx, c.e.Me, req)
}

// CreateUser implements Service.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	return endpoint.Call[CreateUserRequest, User](ctx, c.e.CreateUser, req)
}

// ListUsers implements Service.
func (c *Client) ListUsers(ctx context.Context, req endpoint.Empty) (UserList, error) {
	return endpoint.Call[endpoint.Empty, UserList](ctx, c.e.ListUsers, req)
}

// DeleteUser implements Service.
func (c *Client) DeleteUser(ctx context.Context, req DeleteUserRequest) (endpoint.Empty, error) {
	return endpoint.Call[DeleteUserRequest, endpoint.Empty](ctx, c.e.DeleteUser, req)
}

// ChangePassword implements Service.
func (c *Client) ChangePassword(ctx context.Context, req ChangePasswordRequest) (endpoint.Empty, error) {
	return endpoint.Call[ChangePasswordRequest, endpoint.Empty](ctx, c.e.ChangePassword, req)
}

// SetPassword implements Service.
func (c *Client) SetPassword(ctx context.Context, req SetPasswordRequest) (endpoint.Empty, error) {
	return endpoint.Call[SetPasswordRequest, endpoint.Empty](ctx, c.e.SetPassword, req)
}
