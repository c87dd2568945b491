package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// placedFixture is a proxy whose storage instances are placed, with the
// placer following a bucket of an embedded NATS server.
type placedFixture struct {
	*fixture
	store *placement.Store
}

func newPlacedFixture(t *testing.T, plane string) *placedFixture {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("nats://"+s.Addr().(*net.TCPAddr).String(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	placer := placement.NewPlacer(placement.Options{LookupTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = placer.Run(ctx, nc) }()
	t.Cleanup(func() { cancel(); <-done })
	octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ocancel()
	for !placer.Opened() {
		if octx.Err() != nil {
			t.Fatal("the placement bucket did not open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	store, err := placement.OpenStore(octx, nc, placement.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}

	keys := newKeys(t, testSecret)
	reg := registry.NewMemory()
	balancer := proxy.NewBalancer(reg).Placed("storage", placer)
	url := serveProxy(t, plane, proxy.NewHandler(log.NewNopLogger(), balancer, keys, prometheus.NewRegistry()), 0)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	f := &placedFixture{fixture: &fixture{reg: reg, keys: keys, url: url, client: client}, store: store}
	f.declare(t, "storage", storageRoutes)
	return f
}

func (f *placedFixture) tokenFor(t *testing.T, id string) http.Header {
	t.Helper()
	tok, _, err := f.keys.Sign(auth.Identity{ID: id, Name: "user-" + id}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return bearer(tok)
}

// waitPlaced waits until the bucket says where id lives.
func (f *placedFixture) waitPlaced(t *testing.T, id string) string {
	t.Helper()
	rec, found, err := f.store.Get(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("user %s not placed: %v", id, err)
	}
	return rec.Node
}

func TestPlacedStorage(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newPlacedFixture(t, plane)
		n2, n3 := &echo{name: "n2"}, &echo{name: "n3"}
		in2 := backend(t, "storage", "n2", storageRoutes, n2)
		in3 := backend(t, "storage", "n3", storageRoutes, n3)
		f.register(t, in2, in3)
		hits := func() int64 { return n2.hits.Load() + n3.hits.Load() }

		// Users chosen so that one lands on each node.
		var onN2, onN3 string
		for i := 0; onN2 == "" || onN3 == ""; i++ {
			id := fmt.Sprintf("%032x", i+1)
			switch placement.Choose(id, []string{"n2", "n3"}) {
			case "n2":
				onN2 = id
			case "n3":
				onN3 = id
			}
		}

		t.Run("a read of a user placed nowhere goes anywhere and places no one", func(t *testing.T) {
			res := f.do(t, http.MethodGet, "/api/v1/files/", nil, f.tokenFor(t, onN2))
			if res.status != http.StatusOK {
				t.Fatalf("status %d", res.status)
			}
			if _, found, _ := f.store.Get(context.Background(), onN2); found {
				t.Fatal("a read placed the user")
			}
		})

		t.Run("the first write places; everything after goes there", func(t *testing.T) {
			for _, u := range []struct{ id, node string }{{onN2, "n2"}, {onN3, "n3"}} {
				res := f.do(t, http.MethodPut, "/api/v1/files/a.txt", strings.NewReader("x"), f.tokenFor(t, u.id))
				if res.status != http.StatusOK || res.body != u.node {
					t.Fatalf("PUT of %s answered by %q (%d), want %s", u.id, res.body, res.status, u.node)
				}
				if got := f.waitPlaced(t, u.id); got != u.node {
					t.Fatalf("placed on %s, want %s", got, u.node)
				}
				for range 6 {
					for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodDelete} {
						res := f.do(t, m, "/api/v1/files/a.txt", nil, f.tokenFor(t, u.id))
						if m != http.MethodHead && res.body != u.node {
							t.Fatalf("%s of %s answered by %q, want %s", m, u.id, res.body, u.node)
						}
					}
				}
			}
		})

		t.Run("a node joining moves no one", func(t *testing.T) {
			n4 := &echo{name: "n4"}
			f.register(t, backend(t, "storage", "n4", storageRoutes, n4))
			for range 6 {
				res := f.do(t, http.MethodPut, "/api/v1/files/b.txt", strings.NewReader("x"), f.tokenFor(t, onN2))
				if res.body != "n2" {
					t.Fatalf("after n4 joined, PUT answered by %q", res.body)
				}
			}
			if n4.hits.Load() != 0 {
				t.Fatalf("n4 got %d requests of placed users", n4.hits.Load())
			}
		})

		t.Run("the placed node is down: 503 for everything, nothing reaches another node", func(t *testing.T) {
			f.deregister(t, in2)
			before := hits()
			for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
				path := "/api/v1/files/a.txt"
				if m == http.MethodGet {
					path = "/api/v1/files/"
				}
				var body io.Reader
				if m == http.MethodPut {
					body = strings.NewReader("new")
				}
				res := f.do(t, m, path, body, f.tokenFor(t, onN2))
				if m == http.MethodHead {
					if res.status != http.StatusServiceUnavailable {
						t.Errorf("HEAD: status %d, want 503", res.status)
					}
					continue
				}
				wantError(t, res, http.StatusServiceUnavailable, "unavailable")
				if !strings.Contains(res.body, "placement.instance_down") {
					t.Errorf("%s: body %s does not name placement.instance_down", m, res.body)
				}
			}
			if got := hits() - before; got != 0 {
				t.Fatalf("%d requests of a user placed on a node that is down reached other nodes", got)
			}
			// The user placed on n3 does not notice.
			res := f.do(t, http.MethodGet, "/api/v1/files/a.txt", nil, f.tokenFor(t, onN3))
			if res.status != http.StatusOK || res.body != "n3" {
				t.Fatalf("user on n3: %d %q", res.status, res.body)
			}
			if got := f.waitPlaced(t, onN2); got != "n2" {
				t.Fatalf("the placement moved to %s while n2 was down", got)
			}
		})

		t.Run("the node returns: its users are served there again", func(t *testing.T) {
			f.register(t, in2)
			res := f.do(t, http.MethodGet, "/api/v1/files/a.txt", nil, f.tokenFor(t, onN2))
			if res.status != http.StatusOK || res.body != "n2" {
				t.Fatalf("%d %q, want n2", res.status, res.body)
			}
		})
	})
}
