package control

import (
	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Endpoints are the control API's methods as go-kit endpoints.
type Endpoints struct {
	List    kitendpoint.Endpoint
	Nodes   kitendpoint.Endpoint
	Kill    kitendpoint.Endpoint
	Run     kitendpoint.Endpoint
	Restart kitendpoint.Endpoint
	// Reload is POST /api/v1/reload.
	Reload kitendpoint.Endpoint
	// SetPassword is PUT /api/v1/users/{name}/password.
	SetPassword kitendpoint.Endpoint
}

// MakeEndpoints adapts s to endpoints, each wrapped by chain.
func MakeEndpoints(s Service, chain endpoint.Chain) Endpoints {
	return Endpoints{
		List:    chain.Wrap("list", endpoint.Typed(s.List)),
		Nodes:   chain.Wrap("nodes", endpoint.Typed(s.Nodes)),
		Kill:    chain.Wrap("kill", endpoint.Typed(s.Kill)),
		Run:     chain.Wrap("run", endpoint.Typed(s.Run)),
		Restart: chain.Wrap("restart", endpoint.Typed(s.Restart)),
		Reload:  chain.Wrap("reload", endpoint.Typed(s.Reload)),

		SetPassword: chain.Wrap("set_password", endpoint.Typed(s.SetPassword)),
	}
}
