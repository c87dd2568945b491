package service

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Parts are what one service brings to its run group.
type Parts struct {
	Logger   log.Logger
	Base     *Base
	Handler  http.Handler
	Registry *prometheus.Registry
	// Ready, when set, must hold as well as the listeners being open for
	// /readyz to answer 200.
	Ready func() bool
	// Actors are background workers, each added to the group.
	Actors []Actor
}

// Actor is one oklog/run actor.
type Actor struct {
	Execute   func() error
	Interrupt func(error)
}

// NewRegistry returns a metrics registry for one started service, with the
// Go and process collectors. Each start gets its own, never the global one,
// so a restart registers its collectors afresh.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Chain returns the endpoint middleware chain of a service: logging and
// metrics under its name, the request timeout of its base settings.
func Chain(logger log.Logger, reg prometheus.Registerer, name string, b *Base) endpoint.Chain {
	return endpoint.Chain{Logger: logger, Metrics: endpoint.NewMetrics(reg, name), Timeout: b.RequestTimeout}
}

// Serve runs the group of one service: its HTTP listener, its debug
// listener and its workers, until ctx is done or one actor returns. Both
// listeners are opened before anything runs, so a taken port is an error at
// once.
func Serve(ctx context.Context, up func(Addrs), p Parts) error {
	api, err := transport.Listen(log.With(p.Logger, "listener", "http"), p.Base.HTTPAddr, p.Handler, p.Base.ShutdownTimeout)
	if err != nil {
		return err
	}
	var listening atomic.Bool
	ready := func() bool { return listening.Load() && (p.Ready == nil || p.Ready()) }
	debugHandler := transport.DebugHandler(p.Registry, ready, p.Base.Pprof)
	debug, err := transport.Listen(log.With(p.Logger, "listener", "debug"), p.Base.DebugAddr, debugHandler, time.Second)
	if err != nil {
		_ = api.Close()
		return err
	}

	var g run.Group
	api.AddTo(&g)
	debug.AddTo(&g)
	for _, a := range p.Actors {
		g.Add(a.Execute, a.Interrupt)
	}
	// The context actor: the caller's cancellation stops the group.
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) {
		cancel()
	})

	listening.Store(true)
	up(Addrs{HTTP: api.Addr(), Debug: debug.Addr()})
	return g.Run()
}
