package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestEjectorHolds(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	e := newEjector(EjectOptions{Now: c.Now})
	ins := []registry.Instance{
		{Service: "users", Node: "a", Addr: "127.0.0.1:1"},
		{Service: "users", Node: "b", Addr: "127.0.0.1:2"},
		{Service: "users", Node: "c", Addr: "127.0.0.1:3"},
	}
	a := ins[0]
	errRefused := errors.New("connection refused")
	ctx := context.Background()
	order := func() []string {
		var nodes []string
		for _, in := range e.arrange("users", ins, 0, nil) {
			nodes = append(nodes, in.Node)
		}
		return nodes
	}
	ejections := func() float64 { return testutil.ToFloat64(e.ejections.WithLabelValues("users")) }
	wantOrder := func(t *testing.T, want ...string) {
		t.Helper()
		got := order()
		if len(got) != len(want) {
			t.Fatalf("order = %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("order = %v, want %v", got, want)
			}
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	e.refused(cancelled, a, context.Canceled)
	if e.size.Load() != 0 || ejections() != 0 {
		t.Fatal("a dial cut short by the request's end ejected the instance")
	}

	// Out of file descriptors is the proxy's trouble, not a's.
	e.refused(ctx, a, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)})
	if e.size.Load() != 0 || ejections() != 0 {
		t.Fatal("a dial that failed for want of file descriptors ejected the instance")
	}

	e.refused(ctx, a, errRefused)
	wantOrder(t, "b", "c", "a")
	// Requests that dialed it at the same moment change nothing.
	c.advance(500 * time.Millisecond)
	e.refused(ctx, a, errRefused)
	if got := ejections(); got != 1 {
		t.Fatalf("ejections = %v after two refusals within one hold, want 1", got)
	}
	c.advance(500 * time.Millisecond)
	wantOrder(t, "a", "b", "c")

	// Refused again each time its hold ends: the hold doubles, up to
	// the cap.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		e.refused(ctx, a, errRefused)
		c.advance(want - time.Millisecond)
		wantOrder(t, "b", "c", "a")
		c.advance(time.Millisecond)
		wantOrder(t, "a", "b", "c")
	}
	if got := ejections(); got != 5 {
		t.Fatalf("ejections = %v, want 5", got)
	}

	// Quiet for the cap after its hold: forgotten, the next hold is the
	// first one again.
	c.advance(DefaultEjectMaxHold)
	wantOrder(t, "a", "b", "c")
	if e.size.Load() != 0 {
		t.Fatalf("%d holds remembered after a quiet spell, want none", e.size.Load())
	}
	e.refused(ctx, a, errRefused)
	c.advance(DefaultEjectHold)
	wantOrder(t, "a", "b", "c")

	// Every instance held: all still there, in their turn.
	for _, in := range ins {
		e.refused(ctx, in, errRefused)
	}
	if got := e.arrange("users", ins, 1, nil); len(got) != 3 || got[0].Node != "b" {
		t.Fatalf("every instance held: %v, want all three from b on", got)
	}

	// An instance the registry no longer lists is forgotten, so that it
	// is taken at its turn when it comes back.
	e.forgetGone("users", ins[1:])
	if got := e.arrange("users", ins, 1, nil); got[0].Node != "a" || got[1].Node != "b" || got[2].Node != "c" {
		t.Fatalf("a forgotten, b and c held: %v, want a, b, c", got)
	}
	e.forgetGone("users", nil)
	if e.size.Load() != 0 {
		t.Fatalf("%d holds remembered for instances gone, want none", e.size.Load())
	}
	wantOrder(t, "a", "b", "c")
}
