package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// testClock is the balancer's time, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newEjectFixture is newFixture with the balancer's clock in the test's
// hands.
func newEjectFixture(t *testing.T, plane string) (*fixture, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Unix(1_000_000, 0)}
	keys := newKeys(t, testSecret)
	reg := registry.NewMemory()
	metrics := prometheus.NewRegistry()
	balancer := proxy.NewBalancer(reg).Ejecting(proxy.EjectOptions{Now: clock.Now, Registerer: metrics})
	url := serveProxy(t, plane, proxy.NewHandler(log.NewNopLogger(), balancer, keys, metrics), 0)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	return &fixture{reg: reg, keys: keys, metrics: metrics, url: url, client: client}, clock
}

// acceptCounter counts the connections a listener accepts.
type acceptCounter struct {
	net.Listener
	accepts atomic.Int64
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// serveAt brings an instance that refused back: it serves h on addr,
// where nothing listened, until the test ends, and counts the
// connections made to it.
func serveAt(t *testing.T, addr string, h http.Handler) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	cl := &acceptCounter{Listener: ln}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return &cl.accepts
}

// ejections reads ocis_proxy_ejections_total for service.
func ejections(t *testing.T, f *fixture, service string) float64 {
	t.Helper()
	mfs, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ocis_proxy_ejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// ejectPaths are the two ways the proxy forwards: GET on its own
// connections (forwardDirect), PUT with a body through the reverse proxy
// (retrying).
var ejectPaths = []struct {
	name   string
	method string
	body   func() io.Reader
}{
	{"direct GET", http.MethodGet, func() io.Reader { return nil }},
	{"reverse proxy PUT", http.MethodPut, func() io.Reader { return strings.NewReader("payload") }},
}

func TestRefusedInstanceIsEjectedForItsHold(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		for _, p := range ejectPaths {
			t.Run(p.name, func(t *testing.T) {
				f, clock := newEjectFixture(t, plane)
				// a sorts first, so the first request starts with it.
				a := registry.Instance{Service: "storage", Node: "a", Addr: refusedAddr(t), Routes: storageRoutes}
				f.register(t, a, backend(t, "storage", "b", storageRoutes, &echo{name: "b"}))
				valid := bearer(token(t, f.keys, time.Hour))

				if got := f.do(t, p.method, "/api/v1/files/x", p.body(), valid); got.status != http.StatusOK || got.body != "b" {
					t.Fatalf("first request: %d %q, want b's answer", got.status, got.body)
				}
				if got := ejections(t, f, "storage"); got != 1 {
					t.Fatalf("ejections = %v, want 1", got)
				}
				// a listens again, but its hold is not over: no request
				// dials it, whatever its turn.
				accepts := serveAt(t, a.Addr, &echo{name: "a"})
				for i := range 6 {
					if got := f.do(t, p.method, "/api/v1/files/x", p.body(), valid); got.body != "b" {
						t.Fatalf("request %d within the hold answered by %q (%d), want b", i, got.body, got.status)
					}
				}
				if n := accepts.Load(); n != 0 {
					t.Fatalf("the ejected instance was dialed %d times within its hold", n)
				}

				clock.advance(proxy.DefaultEjectHold)
				answered := map[string]int{}
				for range 4 {
					answered[f.do(t, p.method, "/api/v1/files/x", p.body(), valid).body]++
				}
				if answered["a"] != 2 || answered["b"] != 2 || accepts.Load() == 0 {
					t.Fatalf("after the hold: answers %v, %d connections to a; want a and b in turn", answered, accepts.Load())
				}
				if got := ejections(t, f, "storage"); got != 1 {
					t.Fatalf("ejections = %v, want 1", got)
				}
			})
		}
	})
}

func TestEveryInstanceEjectedIsStillTried(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		for _, p := range ejectPaths {
			t.Run(p.name, func(t *testing.T) {
				f, _ := newEjectFixture(t, plane)
				a := registry.Instance{Service: "storage", Node: "a", Addr: refusedAddr(t), Routes: storageRoutes}
				b := registry.Instance{Service: "storage", Node: "b", Addr: refusedAddr(t), Routes: storageRoutes}
				f.register(t, a, b)
				valid := bearer(token(t, f.keys, time.Hour))

				wantError(t, f.do(t, p.method, "/api/v1/files/x", p.body(), valid), http.StatusServiceUnavailable, "unavailable")
				if got := ejections(t, f, "storage"); got != 2 {
					t.Fatalf("ejections = %v, want 2", got)
				}
				// Both come back within their holds: held, they are still
				// tried rather than the request refused untried.
				accepts := serveAt(t, a.Addr, &echo{name: "a"})
				serveAt(t, b.Addr, &echo{name: "b"})
				got := f.do(t, p.method, "/api/v1/files/x", p.body(), valid)
				if got.status != http.StatusOK || (got.body != "a" && got.body != "b") {
					t.Fatalf("every instance held: %d %q, want an instance's answer", got.status, got.body)
				}
				if got.body == "a" && accepts.Load() == 0 {
					t.Fatal("a answered without a connection")
				}
			})
		}
	})
}

func TestInstanceBackInRegistryIsNotHeld(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f, _ := newEjectFixture(t, plane)
		a := registry.Instance{Service: "storage", Node: "a", Addr: refusedAddr(t), Routes: storageRoutes}
		f.register(t, a, backend(t, "storage", "b", storageRoutes, &echo{name: "b"}))
		valid := bearer(token(t, f.keys, time.Hour))
		f.do(t, http.MethodGet, "/api/v1/files/x", nil, valid)
		if got := ejections(t, f, "storage"); got != 1 {
			t.Fatalf("ejections = %v, want 1", got)
		}
		// a stops being listed (its service stopped, as in a restart) while
		// requests come, and is listed again, now listening: a new start is
		// taken at its turn at once, though the clock never moved.
		f.deregister(t, a)
		f.do(t, http.MethodGet, "/api/v1/files/x", nil, valid)
		accepts := serveAt(t, a.Addr, &echo{name: "a"})
		f.register(t, a)
		answered := map[string]int{}
		for range 4 {
			answered[f.do(t, http.MethodGet, "/api/v1/files/x", nil, valid).body]++
		}
		if answered["a"] != 2 || accepts.Load() == 0 {
			t.Fatalf("answers %v after a came back; want a in its turn", answered)
		}
	})
}

func TestEjectionKeepsPlacement(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newPlacedFixture(t, plane)
		n3 := &echo{name: "n3"}
		in2 := registry.Instance{Service: "storage", Node: "n2", Addr: refusedAddr(t), Routes: storageRoutes}
		f.register(t, in2, backend(t, "storage", "n3", storageRoutes, n3))
		user := fmt.Sprintf("%032x", 42)
		if _, _, err := f.store.Create(context.Background(), user, placement.Record{Node: "n2", By: "operator"}); err != nil {
			t.Fatal(err)
		}
		// n2 is listed but refuses, first as it fails and then while it is
		// held: its user gets 503 every time and n3 is never asked, though
		// it is the only instance not held.
		for i := range 2 {
			for _, p := range ejectPaths {
				got := f.do(t, p.method, "/api/v1/files/x", p.body(), f.tokenFor(t, user))
				wantError(t, got, http.StatusServiceUnavailable, "unavailable")
				if n := n3.hits.Load(); n != 0 {
					t.Fatalf("round %d, %s: %d requests of a user placed on n2 reached n3", i, p.name, n)
				}
			}
		}
	})
}
