package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// slowBackend says when a request reached it (and the first byte of its
// body, if it has one), reads the body to the end, then answers only when
// the request goes away: an instance that takes its time.
type slowBackend struct{ entered chan struct{} }

func (b slowBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = r.Body.Read(make([]byte, 1))
	close(b.entered)
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// TestStopCutsForwardedRequests stops a proxy while it forwards an upload
// and a request whose answer is slow to a remote instance, and checks that
// at the end of its drain the clients are told 503 unavailable: the cut
// cancels the forwarded request, which is neither a client that went away
// (no answer) nor a success.
func TestStopCutsForwardedRequests(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		for _, tc := range []struct {
			name   string
			method string
			body   bool
		}{
			{name: "upload", method: http.MethodPut, body: true},
			{name: "slow answer", method: http.MethodGet},
		} {
			t.Run(tc.name, func(t *testing.T) {
				const drain = 200 * time.Millisecond
				keys := newKeys(t, testSecret)
				reg := registry.NewMemory()
				slow := slowBackend{entered: make(chan struct{})}
				if err := reg.Register(backend(t, "storage", "n1", storageRoutes, slow)); err != nil {
					t.Fatal(err)
				}
				base := service.Base{HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", ShutdownTimeout: drain}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				addrs, done := make(chan service.Addrs, 1), make(chan error, 1)
				go func() {
					serve := service.Serve
					if plane == proxy.PlaneFastHTTP {
						serve = proxy.ServeFast
					}
					done <- serve(ctx, func(a service.Addrs) { addrs <- a }, service.Parts{
						Logger: log.NewNopLogger(), Base: &base, Registry: prometheus.NewRegistry(),
						Handler: proxy.NewHandler(log.NewNopLogger(), proxy.NewBalancer(reg), keys, prometheus.NewRegistry()),
					})
				}()
				addr := (<-addrs).HTTP

				var body io.Reader
				if tc.body {
					pr, pw := io.Pipe()
					defer pw.Close()
					go func() { _, _ = pw.Write(bytes.Repeat([]byte("u"), 1000)) }()
					body = pr
				}
				req, err := http.NewRequest(tc.method, "http://"+addr+"/api/v1/files/slow.bin", body)
				if err != nil {
					t.Fatal(err)
				}
				if tc.body {
					req.ContentLength = 64 << 20
				}
				req.Header.Set("Authorization", "Bearer "+token(t, keys, time.Hour))
				answered := make(chan *http.Response, 1)
				go func() {
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("request: %v, want a 503 answer", err)
					}
					answered <- resp
				}()
				<-slow.entered
				cancel()
				select {
				case resp := <-answered:
					if resp == nil {
						return
					}
					defer resp.Body.Close()
					var eb struct{ Error struct{ Code, Reason string } }
					_ = json.NewDecoder(resp.Body).Decode(&eb)
					if resp.StatusCode != http.StatusServiceUnavailable || eb.Error.Code != "unavailable" {
						t.Errorf("answered %d %+v, want 503 unavailable", resp.StatusCode, eb.Error)
					}
				case <-time.After(drain + 3*time.Second):
					t.Fatal("no answer")
				}
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
		}
	})
}
