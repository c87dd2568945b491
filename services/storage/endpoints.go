package storage

import (
	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Endpoints are the service's methods as go-kit endpoints, wrapped by the
// middleware chain.
type Endpoints struct {
	Put    kitendpoint.Endpoint
	Get    kitendpoint.Endpoint
	List   kitendpoint.Endpoint
	Delete kitendpoint.Endpoint
}

// MakeEndpoints adapts s to endpoints, each wrapped by chain.
func MakeEndpoints(s Service, chain endpoint.Chain) Endpoints {
	// An upload lasts as long as its bytes keep coming: the request
	// timeout, right for everything else, would cut a large one short.
	// A sender that stalls is cut off by the idle deadline the transport
	// keeps on the body instead (see uploadBody).
	upload := chain
	upload.Timeout = 0
	return Endpoints{
		Put:    upload.Wrap("put", endpoint.Typed(s.Put)),
		Get:    chain.Wrap("get", endpoint.Typed(s.Get)),
		List:   chain.Wrap("list", endpoint.Typed(s.List)),
		Delete: chain.Wrap("delete", endpoint.Typed(s.Delete)),
	}
}
