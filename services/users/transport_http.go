package users

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// NewHTTPHandler serves the endpoints on the routes the service owns;
// logins are budgeted by the client address, read from X-Forwarded-For
// only when the peer is one of trusted.
func NewHTTPHandler(e Endpoints, logger log.Logger, keys *auth.Keys, trusted []netip.Prefix) http.Handler {
	r := transport.NewRouter(logger, transport.JWT(keys))
	decodeLogin := func(ctx context.Context, req *http.Request) (any, error) {
		v, err := transport.DecodeJSON[LoginRequest](ctx, req)
		if err != nil {
			return nil, err
		}
		login := v.(LoginRequest)
		login.ClientAddr = transport.ClientAddr(req, trusted)
		return login, nil
	}
	r.Handle("POST /api/v1/tokens", e.Login, decodeLogin, transport.Public())
	r.Handle("GET /api/v1/users/me", e.Me, transport.NoBody(func(*http.Request) endpoint.Empty { return endpoint.Empty{} }))
	r.Handle("POST /api/v1/users", e.CreateUser, transport.DecodeJSON[CreateUserRequest], transport.Status(http.StatusCreated))
	r.Handle("GET /api/v1/users", e.ListUsers, transport.NoBody(func(*http.Request) endpoint.Empty { return endpoint.Empty{} }))
	r.Handle("DELETE /api/v1/users/{name}", e.DeleteUser, transport.NoBody(func(r *http.Request) DeleteUserRequest {
		return DeleteUserRequest{Username: r.PathValue("name")}
	}), transport.Status(http.StatusNoContent))
	return r
}
