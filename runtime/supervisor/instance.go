package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// defaultStopTimeout is a service's shutdown timeout when its unit names
// none: the default of every service's --shutdown-timeout.
const defaultStopTimeout = 30 * time.Second

// errAbandoned is a stop given up on: the service's Run did not return
// within its shutdown timeout and the policy's grace.
var errAbandoned = errors.New("did not stop in time, abandoned")

// instance is one start of a unit: the service's Run in a goroutine of its
// own, the readiness probe, and its entry in the registry while it runs.
type instance struct {
	u      *unit
	cancel context.CancelFunc
	done   chan error // Run's result
	ready  chan error // the probe's verdict, once the listeners are up
	// addrs are the listeners' addresses, written before ready is sent
	// and read after it is received.
	addrs service.Addrs
	entry *registry.Instance // non-nil while registered
}

// start builds a fresh service and runs it; its readiness arrives on
// in.ready, the end of its Run on in.done.
func (u *unit) start() (*instance, error) {
	svc, err := u.Build()
	if err != nil {
		return nil, &buildError{err}
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{u: u, cancel: cancel, done: make(chan error, 1), ready: make(chan error, 1)}
	up := make(chan service.Addrs, 1)
	go func() { in.done <- safeRun(ctx, svc, up) }()
	go func() {
		select {
		case in.addrs = <-up:
			u.setAddrs(in.addrs)
			if err := u.sup.ready(ctx, in.addrs); ctx.Err() == nil {
				in.ready <- err
			}
		case <-ctx.Done():
		}
	}()
	return in, nil
}

// buildError is a service that could not even be built: its settings
// passed Validate but still cannot work (a data dir it may not read). A
// retry would build it from the same settings and fail alike, so the unit
// is failed at once rather than sent through backoff.
type buildError struct{ err error }

func (e *buildError) Error() string { return "build: " + e.err.Error() }

func (e *buildError) Unwrap() error { return e.err }

// safeRun runs svc and turns a panic into an error, so a panicking service
// is one more failure for the supervisor, not the end of the process.
func safeRun(ctx context.Context, svc service.Runner, up chan<- service.Addrs) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	once := sync.Once{}
	return svc.Run(ctx, func(a service.Addrs) {
		once.Do(func() { up <- a })
	})
}

// register puts the ready instance in the registry, where the proxy finds
// it.
func (in *instance) register() error {
	u := in.u
	e := registry.Instance{Service: u.Name, Node: u.sup.node, Addr: service.Dialable(in.addrs.HTTP), Routes: u.Routes, Local: in.addrs.Handler}
	if err := u.sup.registry.Register(e); err != nil {
		return fmt.Errorf("register instance: %w", err)
	}
	in.entry = &e
	return nil
}

// deregister takes the instance out of the registry, if it is there.
func (in *instance) deregister() {
	if in.entry == nil {
		return
	}
	if err := in.u.sup.registry.Deregister(*in.entry); err != nil {
		level.Warn(in.u.logger).Log("msg", "deregister instance", "err", err)
	}
	in.entry = nil
}

// stop takes the instance out of the registry, so no new request is routed
// to it, then cancels it and waits for it to drain: at most the service's
// shutdown timeout and the policy's grace. Past that it returns
// errAbandoned and leaves Run's goroutine behind rather than wedge the unit
// and every shutdown waiting for it.
func (in *instance) stop() error {
	u := in.u
	in.deregister()
	u.switchState(StateStopping, nil)
	in.cancel()
	timeout := u.StopTimeout
	if timeout <= 0 {
		timeout = defaultStopTimeout
	}
	bound := time.NewTimer(timeout + u.sup.policy.StopGrace)
	defer bound.Stop()
	select {
	case err := <-in.done:
		return err
	case <-bound.C:
		return fmt.Errorf("%w: still running %s after it was told to stop", errAbandoned, timeout+u.sup.policy.StopGrace)
	}
}

// readyProbe returns the probe that waits until a started service is
// ready to serve, or ctx is done. A service of this process hands over the
// condition its /readyz answers 200 on (service.Addrs.Ready), which is
// read directly: asking it over HTTP would cost a connection, a request
// and several goroutine hand-offs per check while every service of the
// process competes for the CPUs at once. A service that does not hand it
// over is asked on /readyz of its debug address.
func readyProbe(client *http.Client) func(ctx context.Context, a service.Addrs) error {
	return func(ctx context.Context, a service.Addrs) error {
		ready := a.Ready
		if ready == nil {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+service.Dialable(a.Debug)+"/readyz", nil)
			if err != nil {
				return err
			}
			ready = func() bool { return answersOK(client, req) }
		}
		wait := time.Millisecond
		for !ready() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait = min(wait*2, 100*time.Millisecond)
		}
		return nil
	}
}

// answersOK reports whether req, a GET without a body, is answered 200.
func answersOK(client *http.Client, req *http.Request) bool {
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
