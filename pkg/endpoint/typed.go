// Package endpoint holds the go-kit endpoint helpers every service uses: typed
// endpoints, the one middleware chain, and the error kinds of the wire.
package endpoint

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// Func is a service method in the shape an endpoint wraps: one request value
// in, one response value out.
type Func[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Typed turns a typed method into a go-kit endpoint. The type assertion lives
// here once; a request of the wrong type is an internal error, never a panic.
func Typed[Req, Resp any](f Func[Req, Resp]) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(Req)
		if !ok {
			var want Req
			return nil, fmt.Errorf("%w: endpoint wants %T, got %T", apierr.ErrInternal, want, request)
		}
		return f(ctx, req)
	}
}

// Call invokes a go-kit endpoint with a typed request and asserts the typed
// response: the caller's side of Typed, used by clients built from endpoints.
func Call[Req, Resp any](ctx context.Context, e endpoint.Endpoint, req Req) (Resp, error) {
	var zero Resp
	response, err := e(ctx, req)
	if err != nil {
		return zero, err
	}
	resp, ok := response.(Resp)
	if !ok {
		return zero, fmt.Errorf("%w: endpoint answered %T, want %T", apierr.ErrInternal, response, zero)
	}
	return resp, nil
}

// Empty is the request or response of a method that takes or returns nothing.
type Empty struct{}
