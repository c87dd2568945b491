package runtime

import (
	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Endpoints are the control API's methods as go-kit endpoints.
type Endpoints struct {
	List    kitendpoint.Endpoint
	Kill    kitendpoint.Endpoint
	Run     kitendpoint.Endpoint
	Restart kitendpoint.Endpoint
}

// MakeEndpoints adapts c to endpoints, each wrapped by chain.
func MakeEndpoints(c Control, chain endpoint.Chain) Endpoints {
	return Endpoints{
		List:    chain.Wrap("list", endpoint.Typed(c.List)),
		Kill:    chain.Wrap("kill", endpoint.Typed(c.Kill)),
		Run:     chain.Wrap("run", endpoint.Typed(c.Run)),
		Restart: chain.Wrap("restart", endpoint.Typed(c.Restart)),
	}
}
