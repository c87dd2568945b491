package control

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// RequestTimeout bounds one call of the control API: a restart waits for the
// service to drain and to become ready again.
const RequestTimeout = time.Minute

// NewHTTPHandler serves the control API, every route behind the runtime
// token, and /healthz, /readyz, /metrics beside it without one.
//
// Routes about another node (/api/v1/nodes/{node}/…) are relayed to that
// node's runtime over NATS; GET /api/v1/services?all=1 lists every node's
// services from the registry.
//
// Options add routes served by more than an endpoint (WithLogs).
func NewHTTPHandler(e Endpoints, logger log.Logger, token string, reg *prometheus.Registry, ready func() bool, opts ...HandlerOption) http.Handler {
	r := transport.NewRouter(logger, transport.StaticToken(token))
	named := transport.NoBody(func(r *http.Request) ServiceRequest {
		return ServiceRequest{Node: r.PathValue("node"), Name: r.PathValue("name")}
	})
	r.Handle("GET /api/v1/services", e.List, transport.NoBody(func(r *http.Request) ListRequest {
		all := r.URL.Query().Get("all")
		return ListRequest{All: all == "1" || all == "true"}
	}))
	r.Handle("POST /api/v1/services/{name}/kill", e.Kill, named)
	r.Handle("POST /api/v1/services/{name}/run", e.Run, named)
	r.Handle("POST /api/v1/services/{name}/restart", e.Restart, named)
	r.Handle("POST /api/v1/reload", e.Reload, transport.NoBody(func(*http.Request) endpoint.Empty { return endpoint.Empty{} }))

	r.Handle("GET /api/v1/nodes", e.Nodes, transport.NoBody(func(*http.Request) endpoint.Empty { return endpoint.Empty{} }))
	r.Handle("GET /api/v1/nodes/{node}/services", e.List, transport.NoBody(func(r *http.Request) ListRequest {
		return ListRequest{Node: r.PathValue("node")}
	}))
	r.Handle("POST /api/v1/nodes/{node}/services/{name}/kill", e.Kill, named)
	r.Handle("POST /api/v1/nodes/{node}/services/{name}/run", e.Run, named)
	r.Handle("POST /api/v1/nodes/{node}/services/{name}/restart", e.Restart, named)

	// An account's password, set through this node's users service.
	r.Handle("PUT /api/v1/users/{name}/password", e.SetPassword, func(ctx context.Context, hr *http.Request) (any, error) {
		v, err := transport.DecodeJSON[PasswordRequest](ctx, hr)
		if err != nil {
			return nil, err
		}
		req := v.(PasswordRequest)
		req.Name = hr.PathValue("name")
		return req, nil
	}, transport.Status(http.StatusNoContent))
	for _, o := range opts {
		o(r, logger)
	}

	debug := transport.DebugHandler(reg, ready, false)
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		r.HandleHTTP(p, debug, transport.Public())
	}
	return r
}
