package service

import (
	"context"
	"net/http"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Handler builds a service's HTTP handler from its endpoint middleware
// chain and the logger of its transport.
type Handler func(chain endpoint.Chain, logger log.Logger) http.Handler

// ServeAPI serves a service whose HTTP API is made of go-kit endpoints, the
// part of Run every such service shares: a fresh metrics registry, the
// middleware chain under the service's name (Chain), the handler built
// from them, and the run group (Serve) with the service's workers.
func ServeAPI(ctx context.Context, up func(Addrs), env Env, name string, b *Base, handler Handler, actors ...Actor) error {
	return ServeAPIWith(ctx, up, env, name, b, NewRegistry(), handler, actors...)
}

// ServeAPIWith is ServeAPI on a metrics registry the service made itself
// (NewRegistry), for services whose workers register metrics before the
// group is built: an events publisher or consumer, a NATS connection.
func ServeAPIWith(ctx context.Context, up func(Addrs), env Env, name string, b *Base, reg *prometheus.Registry, handler Handler, actors ...Actor) error {
	tr := env.Tracing.For(name)
	chain := Chain(env.Logger, reg, name, b)
	if tr.Enabled() {
		chain.Trace = tr.Endpoint
	}
	return Serve(ctx, up, Parts{
		Logger:   env.Logger,
		Base:     b,
		Handler:  handler(chain, log.With(env.Logger, "transport", "http")),
		Registry: reg,
		Actors:   actors,
		Tracing:  tr,
	})
}
