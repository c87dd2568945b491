package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// ServeFast is service.Serve for the fasthttp plane: it runs the proxy's
// group (its HTTP listener on fasthttp, its debug listener, its workers)
// until ctx is done or one actor returns. p.Handler must be a *Handler.
// Both listeners are opened before anything runs, so a taken port is an
// error at once; the stop drains for the shutdown timeout, cuts what
// still runs with 503, and returns once every request has returned (or
// been given every chance to). The Addrs it reports have no Handler: a
// colocated caller of the proxy has nothing to call on this plane.
func ServeFast(ctx context.Context, up func(service.Addrs), p service.Parts) error {
	h, ok := p.Handler.(*Handler)
	if !ok {
		return fmt.Errorf("proxy: the fasthttp plane serves a *proxy.Handler, not %T", p.Handler)
	}
	srv := NewFastServer(log.With(p.Logger, "listener", "http"), h, FastOptions{
		BodyTimeout: cmp.Or(p.Base.BodyTimeout, transport.DefaultBodyTimeout),
		Tracing:     p.Tracing,
	})
	ln, err := net.Listen("tcp", p.Base.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", p.Base.HTTPAddr, err)
	}
	var listening atomic.Bool
	// Not ready from the moment a stop begins, as on net/http.
	ready := func() bool { return listening.Load() && ctx.Err() == nil && (p.Ready == nil || p.Ready()) }
	debug, err := transport.Listen(log.With(p.Logger, "listener", "debug"), p.Base.DebugAddr, transport.DebugHandler(p.Registry, ready, p.Base.Pprof), time.Second)
	if err != nil {
		_ = ln.Close()
		return err
	}

	var g run.Group
	// drained is closed once the listener answered every request it
	// accepted (or failed); stopped once its drain ended.
	drained, stopped := make(chan struct{}), make(chan struct{})
	var stopping atomic.Bool
	left := 0
	g.Add(func() error {
		defer close(drained)
		level.Info(p.Logger).Log("msg", "listening", "listener", "http", "addr", ln.Addr().String(), "plane", "fasthttp")
		err := srv.Serve(ln)
		if stopping.Load() {
			<-stopped
			return nil
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}, func(error) {
		// The drain runs in a goroutine: an interrupt must not block.
		if stopping.Swap(true) {
			return
		}
		go func() {
			defer close(stopped)
			left = srv.Shutdown(p.Base.ShutdownTimeout)
		}()
	})
	debug.AddTo(&g)
	// Workers are stopped only once the requests they serve drained.
	service.AddActorsAfter(&g, p.Actors, drained)
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) { cancel() })

	listening.Store(true)
	// Ready lets a supervisor in the process (--data-plane fasthttp
	// under ocis server) read readiness without asking /readyz.
	addrs := service.Addrs{HTTP: ln.Addr().String(), Debug: debug.Addr(), Ready: ready}
	if p.Registry != nil {
		addrs.Metrics = p.Registry
	}
	up(addrs)
	err = g.Run()
	if stopping.Load() {
		<-stopped
	}
	if left > 0 {
		level.Error(p.Logger).Log("msg", "requests still running after the drain; the service stops under them", "requests", left)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
