package users

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

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

// NewClient returns a client of the users service at base ("http://host:port").
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse users url %q: %w", base, err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	empty := func(endpoint.Empty) string { return "/api/v1/users" }
	return &Client{e: Endpoints{
		Login:      transport.ClientRoute[LoginRequest, Token](hc, u, http.MethodPost, func(LoginRequest) string { return "/api/v1/tokens" }),
		Me:         transport.ClientRoute[endpoint.Empty, User](hc, u, http.MethodGet, func(endpoint.Empty) string { return "/api/v1/users/me" }),
		CreateUser: transport.ClientRoute[CreateUserRequest, User](hc, u, http.MethodPost, func(CreateUserRequest) string { return "/api/v1/users" }),
		ListUsers:  transport.ClientRoute[endpoint.Empty, UserList](hc, u, http.MethodGet, empty),
		DeleteUser: transport.ClientRoute[DeleteUserRequest, endpoint.Empty](hc, u, http.MethodDelete, func(r DeleteUserRequest) string {
			return "/api/v1/users/" + url.PathEscape(r.Username)
		}),
	}}, nil
}

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
