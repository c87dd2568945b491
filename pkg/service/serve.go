package service

import (
	"cmp"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/tracing"
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
	// Tracing, when set, makes every request of Handler a server span,
	// the listener's and in-process ones alike (tracing.Service.Handler).
	Tracing *tracing.Service
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
	goc, proc := processCollectors()
	reg.MustRegister(goc, proc)
	return reg
}

// processCollectors are the Go runtime's and the process's collectors,
// made once per process and registered in the registry of every service
// start. They describe the one process every service of it shares and
// keep no state a registry could disturb (both may collect concurrently),
// while making one costs: the Go collector matches every runtime metric
// against its rules, and making six of them took about a millisecond of
// CPU during the cold start.
var processCollectors = sync.OnceValues(func() (prometheus.Collector, prometheus.Collector) {
	return collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
})

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
	// A Base not made by NewBase has no body timeout; it gets the default,
	// never an unbounded read.
	bodyTimeout := transport.BodyTimeout(cmp.Or(p.Base.BodyTimeout, transport.DefaultBodyTimeout))
	// Every request, the listener's and in-process ones, goes through one
	// tracker, which ends them in order when the service stops.
	// The span sits inside the tracker, next to the handler, so that it
	// sees the route the handler's mux picked and names itself after it.
	calls := newInflight(p.Logger, p.Tracing.Handler(p.Handler))
	// The listener drains for the shutdown timeout, then gives the
	// requests the tracker cuts at that point time to answer.
	api, err := transport.Listen(log.With(p.Logger, "listener", "http"), p.Base.HTTPAddr, calls, p.Base.ShutdownTimeout+cutGrace, bodyTimeout)
	if err != nil {
		return err
	}
	var listening atomic.Bool
	// Not ready from the moment a stop begins: a load balancer outside
	// stops sending requests while the service drains those it has.
	ready := func() bool { return listening.Load() && ctx.Err() == nil && (p.Ready == nil || p.Ready()) }
	debugHandler := transport.DebugHandler(p.Registry, ready, p.Base.Pprof)
	debug, err := transport.Listen(log.With(p.Logger, "listener", "debug"), p.Base.DebugAddr, debugHandler, time.Second)
	if err != nil {
		_ = api.Close()
		return err
	}

	var g run.Group
	// drained is closed once the API listener has answered every request it
	// accepted (or failed).
	drained := make(chan struct{})
	api.AddToThen(&g, drained)
	debug.AddTo(&g)
	AddActorsAfter(&g, p.Actors, drained)
	// The context actor: the caller's cancellation stops the group. Its
	// interrupt, which runs however the group ends, starts the end of
	// the requests under way.
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) {
		cancel()
		calls.beginStop(p.Base.ShutdownTimeout)
	})

	listening.Store(true)
	addrs := Addrs{HTTP: api.Addr(), Debug: debug.Addr(), Handler: calls.local(), Ready: ready}
	if p.Registry != nil {
		addrs.Metrics = p.Registry
	}
	up(addrs)
	err = g.Run()
	// The listener's requests and in-process calls alike have returned
	// (or been given every chance to), so the service never closes its
	// stores under one.
	if n := calls.wait(); n > 0 {
		level.Error(p.Logger).Log("msg", "requests still running after the drain; the service stops under them", "requests", n)
	}
	return err
}

// AddActorsAfter adds a service's workers (a cache the handlers read, a
// consumer) to g, each stopped only once drained is closed, when the
// requests they serve have drained, never under one; the interrupt hands
// that wait to a goroutine, as an interrupt must not block.
func AddActorsAfter(g *run.Group, actors []Actor, drained <-chan struct{}) {
	for _, a := range actors {
		g.Add(a.Execute, func(err error) {
			go func() {
				<-drained
				a.Interrupt(err)
			}()
		})
	}
}
