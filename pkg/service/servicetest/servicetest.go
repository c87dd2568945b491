// Package servicetest runs one service in a test the way the runtime does:
// built from its config, run until the test stops it, its real addresses
// handed back once it is up.
package servicetest

import (
	"context"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// Running is a service started by Start.
type Running struct {
	// Addrs are the addresses the service listens on.
	Addrs service.Addrs

	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // what Run returned, once done is closed
}

// Start builds cfg with env and runs it until the test ends or Stop is
// called. It fails the test when the service does not come up within ten
// seconds or Run returns before it does.
func Start(t testing.TB, cfg service.Config, env service.Env) *Running {
	t.Helper()
	svc, err := cfg.Build(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, done: make(chan struct{})}
	ups := make(chan service.Addrs, 1)
	go func() {
		defer close(r.done)
		r.err = svc.Run(ctx, func(a service.Addrs) { ups <- a })
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case r.Addrs = <-ups:
	case <-r.done:
		t.Fatalf("run returned %v before it was up", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the service to be up")
	}
	return r
}

// Stop cancels the run and returns what Run returned.
func (r *Running) Stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
		return nil
	}
}
