package activity

import (
	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Endpoints are the service's methods as go-kit endpoints, on the server's
// side wrapped by the middleware chain, on the client's side calling HTTP.
type Endpoints struct {
	List kitendpoint.Endpoint
}

// MakeEndpoints adapts s to endpoints, each wrapped by chain.
func MakeEndpoints(s Service, chain endpoint.Chain) Endpoints {
	return Endpoints{
		List: chain.Wrap("list", endpoint.Typed(s.List)),
	}
}
