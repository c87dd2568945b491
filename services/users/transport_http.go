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

// API is the users service's HTTP API, each route declared once: the
// server serves e through it (NewHTTPHandler), a client fills e from it
// (NewClient), and the descriptor derives from it the prefixes the service
// owns and its public routes.
func API(e *Endpoints) transport.API {
	return transport.API{
		transport.Bind(&e.Login, transport.Post[LoginRequest, Token]("/api/v1/tokens").Public().Decode(decodeLogin)),
		transport.Bind(&e.Me, transport.Get[endpoint.Empty, User]("/api/v1/users/me")),
		transport.Bind(&e.CreateUser, transport.Post[CreateUserRequest, User]("/api/v1/users").Status(http.StatusCreated)),
		transport.Bind(&e.ListUsers, transport.Get[endpoint.Empty, UserList]("/api/v1/users")),
		transport.Bind(&e.DeleteUser, transport.Delete[DeleteUserRequest, endpoint.Empty]("/api/v1/users/{name}").Param("name", deleteName).Status(http.StatusNoContent)),
		// The caller's own ("me" is more specific than {name}, so it wins).
		transport.Bind(&e.ChangePassword, transport.Put[ChangePasswordRequest, endpoint.Empty]("/api/v1/users/me/password").Decode(decodeChangePassword).Status(http.StatusNoContent)),
		transport.Bind(&e.SetPassword, transport.Put[SetPasswordRequest, endpoint.Empty]("/api/v1/users/{name}/password").Param("name", setPasswordName).Status(http.StatusNoContent)),
	}
}

func deleteName(r *DeleteUserRequest) *string { return &r.Username }

func setPasswordName(r *SetPasswordRequest) *string { return &r.Username }

// decodeChangePassword reads the passwords and the client's address, by
// which a wrong current password is budgeted like a failed login.
func decodeChangePassword(ctx context.Context, r *http.Request) (any, error) {
	v, err := transport.DecodeJSON[ChangePasswordRequest](ctx, r)
	if err != nil {
		return nil, err
	}
	req := v.(ChangePasswordRequest)
	req.ClientAddr = transport.ClientAddrFrom(ctx)
	return req, nil
}

// NewHTTPHandler serves the endpoints on the routes of API; logins are
// budgeted by the client address, read from X-Forwarded-For only when the
// peer is one of trusted.
func NewHTTPHandler(e Endpoints, logger log.Logger, keys *auth.Keys, trusted []netip.Prefix) http.Handler {
	r := transport.NewRouter(logger, transport.JWT(keys), transport.TrustedProxies(trusted))
	API(&e).Serve(r)
	return r
}

// decodeLogin reads the credentials, and the client's address, by which
// failed logins are budgeted; the client never sends the address itself.
func decodeLogin(ctx context.Context, r *http.Request) (any, error) {
	v, err := transport.DecodeJSON[LoginRequest](ctx, r)
	if err != nil {
		return nil, err
	}
	login := v.(LoginRequest)
	login.ClientAddr = transport.ClientAddrFrom(ctx)
	return login, nil
}
