package service

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ocis-runtime/ocis/pkg/apierr"
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
	// A Base not made by NewBase has no body timeout; it gets the default,
	// never an unbounded read.
	bodyTimeout := transport.BodyTimeout(cmp.Or(p.Base.BodyTimeout, transport.DefaultBodyTimeout))
	api, err := transport.Listen(log.With(p.Logger, "listener", "http"), p.Base.HTTPAddr, p.Handler, p.Base.ShutdownTimeout, bodyTimeout)
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

	local := &colocated{logger: p.Logger, h: p.Handler}
	listening.Store(true)
	up(Addrs{HTTP: api.Addr(), Debug: debug.Addr(), Handler: local})
	err = g.Run()
	// In-process calls are drained like the listener's requests, so the
	// service never closes its stores under one.
	local.drain(p.Base.ShutdownTimeout)
	return err
}

// colocated is a service's handler as handed to callers in the same process.
// It counts the calls under way so that a stop can wait for them, and
// refuses new ones once the stop began.
type colocated struct {
	logger log.Logger
	h      http.Handler

	mu      sync.Mutex
	closed  bool
	active  int
	drained chan struct{}
}

func (c *colocated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		transport.WriteError(c.logger, w, fmt.Errorf("%w: service is stopping", apierr.ErrUnavailable))
		return
	}
	c.active++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.active--
		if c.closed && c.active == 0 && c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		c.mu.Unlock()
	}()
	c.h.ServeHTTP(w, r)
}

// drain refuses new calls and waits up to timeout for those under way.
func (c *colocated) drain(timeout time.Duration) {
	c.mu.Lock()
	c.closed = true
	if c.active == 0 {
		c.mu.Unlock()
		return
	}
	done := make(chan struct{})
	c.drained = done
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}
