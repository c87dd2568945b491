package activity

import (
	"net/http"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// API is the activity service's HTTP API, each route declared once: the
// server serves e through it (NewHTTPHandler), a client fills e from it
// (NewClient), and the descriptor derives from it the prefix the service
// owns. Every route wants a token: a log is its caller's.
func API(e *Endpoints) transport.API {
	return transport.API{
		transport.Bind(&e.List, transport.Get[ListRequest, Page]("/api/v1/activities").
			Query("limit", formatLimit, parseLimit).
			Query("before", func(r ListRequest) string { return r.Before }, func(r *ListRequest, v string) error {
				r.Before = v
				return nil
			})),
	}
}

// NewHTTPHandler serves the endpoints on the routes of API.
func NewHTTPHandler(e Endpoints, logger log.Logger, keys *auth.Keys) http.Handler {
	r := transport.NewRouter(logger, transport.JWT(keys))
	API(&e).Serve(r)
	return r
}
