package users

import (
	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Endpoints are the service's methods as go-kit endpoints, on the server's
// side wrapped by the middleware chain, on the client's side calling HTTP.
type Endpoints struct {
	Login      kitendpoint.Endpoint
	Me         kitendpoint.Endpoint
	CreateUser kitendpoint.Endpoint
	ListUsers  kitendpoint.Endpoint
	DeleteUser kitendpoint.Endpoint
	// ChangePassword and SetPassword are PUT …/password (password.go).
	ChangePassword kitendpoint.Endpoint
	SetPassword    kitendpoint.Endpoint
}

// MakeEndpoints adapts s to endpoints, each wrapped by chain.
func MakeEndpoints(s Service, chain endpoint.Chain) Endpoints {
	return Endpoints{
		Login:      chain.Wrap("login", endpoint.Typed(s.Login)),
		Me:         chain.Wrap("me", endpoint.Typed(s.Me)),
		CreateUser: chain.Wrap("create_user", endpoint.Typed(s.CreateUser)),
		ListUsers:  chain.Wrap("list_users", endpoint.Typed(s.ListUsers)),
		DeleteUser: chain.Wrap("delete_user", endpoint.Typed(s.DeleteUser)),

		ChangePassword: chain.Wrap("change_password", endpoint.Typed(s.ChangePassword)),
		SetPassword:    chain.Wrap("set_password", endpoint.Typed(s.SetPassword)),
	}
}
