package proxy_test

import (
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

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// newFixtureWith is newFixture with a handler built with opts.
func newFixtureWith(t *testing.T, plane string, opts proxy.Options) *fixture {
	t.Helper()
	f := newFixture(t, plane)
	f.url = serveProxy(t, plane, proxy.NewHandler(log.NewNopLogger(), proxy.NewBalancer(f.reg), f.keys, prometheus.NewRegistry(), proxy.WithOptions(opts)), 0)
	return f
}

// TestResponseTimeout checks the proxy's bound on a service's answer on
// both paths: a read (forwarded directly) and an upload (through the
// reverse proxy) whose answer does not come in time are 503; an upload
// whose body takes longer than the bound but is answered at once after is
// not cut, since the bound starts once the request was sent.
func TestResponseTimeout(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		const bound = 300 * time.Millisecond
		f := newFixtureWith(t, plane, proxy.Options{ResponseTimeout: bound, MaxConnsPerUpstream: 8})
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if strings.HasSuffix(r.URL.Path, "/slow") {
				select {
				case <-time.After(5 * time.Second):
				case <-r.Context().Done():
				}
			}
			_, _ = io.WriteString(w, "done")
		})))
		auth := bearer(token(t, f.keys, time.Hour))

		for _, method := range []string{http.MethodGet, http.MethodPut} {
			t.Run(method+" of a slow answer is 503 at the bound", func(t *testing.T) {
				t0 := time.Now()
				var body io.Reader
				if method == http.MethodPut {
					body = strings.NewReader("content")
				}
				got := f.do(t, method, "/api/v1/files/slow", body, auth)
				wantError(t, got, http.StatusServiceUnavailable, "unavailable")
				if took := time.Since(t0); took < bound || took > bound+2*time.Second {
					t.Errorf("answered after %s, want about %s", took, bound)
				}
			})
		}
		t.Run("a slow upload answered at once is not cut", func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				for range 4 {
					time.Sleep(bound / 2)
					_, _ = pw.Write([]byte("part"))
				}
				_ = pw.Close()
			}()
			got := f.do(t, http.MethodPut, "/api/v1/files/quick", pr, auth)
			if got.status != http.StatusOK || got.body != "done" {
				t.Errorf("got %d %q, want 200 done", got.status, got.body)
			}
		})
	})
}

// countingListener counts the connections a backend accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// TestMaxConnsPerUpstream checks that reads beyond the cap wait for a
// connection instead of opening another, and all get their answer.
func TestMaxConnsPerUpstream(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixtureWith(t, plane, proxy.Options{ResponseTimeout: 5 * time.Second, MaxConnsPerUpstream: 2})
		release := make(chan struct{})
		var entered atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered.Add(1)
			<-release
			_, _ = io.WriteString(w, "ok")
		}))
		ln := &countingListener{Listener: srv.Listener}
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		f.register(t, registry.Instance{Service: "storage", Node: "n1", Addr: ln.Addr().String(), Routes: storageRoutes})
		auth := bearer(token(t, f.keys, time.Hour))

		const requests = 6
		var wg sync.WaitGroup
		results := make(chan result, requests)
		for range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- f.do(t, http.MethodGet, "/api/v1/files/x", nil, auth)
			}()
		}
		eventually(t, func() error {
			if n := entered.Load(); n < 2 {
				return fmt.Errorf("%d requests reached the backend, want 2", n)
			}
			return nil
		})
		time.Sleep(100 * time.Millisecond) // room for a third, were the cap broken
		if n := entered.Load(); n != 2 {
			t.Errorf("%d requests reached the backend at once, want the cap of 2", n)
		}
		close(release)
		wg.Wait()
		close(results)
		for got := range results {
			if got.status != http.StatusOK || got.body != "ok" {
				t.Errorf("got %d %q, want 200 ok", got.status, got.body)
			}
		}
		if n := ln.accepted.Load(); n > 2 {
			t.Errorf("backend accepted %d connections, want at most 2", n)
		}
	})
}
