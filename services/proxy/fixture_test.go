package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// testSecret is the shared secret of the fixture's keys: 32 bytes.
const testSecret = "proxy-test-secret-of-32-bytes-!!"

// Routes the fixture's services own, as the catalogue declares them.
var (
	usersRoutes   = []string{"/api/v1/users", "/api/v1/tokens"}
	storageRoutes = []string{"/api/v1/files"}
	// publicRoutes are the routes each service declares public.
	publicRoutes = map[string][]string{"users": {"POST /api/v1/tokens"}}
)

// fixture is a proxy in front of real backends, all on 127.0.0.1:0 and all
// stopped when the test ends.
type fixture struct {
	reg     *registry.Memory
	keys    *auth.Keys
	metrics *prometheus.Registry
	url     string
	client  *http.Client
}

func newFixture(t *testing.T, plane string) *fixture {
	t.Helper()
	keys := newKeys(t, testSecret)
	reg := registry.NewMemory()
	metrics := prometheus.NewRegistry()
	url := serveProxy(t, plane, proxy.NewHandler(log.NewNopLogger(), proxy.NewBalancer(reg), keys, metrics), 0)
	// Its own transport, so no idle connection outlives the test.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	return &fixture{reg: reg, keys: keys, metrics: metrics, url: url, client: client}
}

// planes are the proxy's data planes; every test of a proxy behind a
// listener runs on each.
func planes() []string { return []string{proxy.PlaneNetHTTP, proxy.PlaneFastHTTP} }

// eachPlane runs test once per data plane, as a subtest named after it.
func eachPlane(t *testing.T, test func(t *testing.T, plane string)) {
	t.Helper()
	for _, plane := range planes() {
		t.Run(plane, func(t *testing.T) { test(t, plane) })
	}
}

// serveProxy serves h on plane on 127.0.0.1:0 until the test ends, with
// the body timeout bodyTimeout (0: the default), and returns its URL.
func serveProxy(t *testing.T, plane string, h *proxy.Handler, bodyTimeout time.Duration) string {
	t.Helper()
	if plane == proxy.PlaneNetHTTP {
		if bodyTimeout == 0 {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			return srv.URL
		}
		s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", h, time.Second, transport.BodyTimeout(bodyTimeout))
		if err != nil {
			t.Fatal(err)
		}
		var g run.Group
		s.AddTo(&g)
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
		done := make(chan error, 1)
		go func() { done <- g.Run() }()
		t.Cleanup(func() { cancel(); <-done })
		return "http://" + s.Addr()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewFastServer(log.NewNopLogger(), h, proxy.FastOptions{BodyTimeout: bodyTimeout})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(time.Second)
		if err := <-done; err != nil {
			t.Errorf("fasthttp plane: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func newKeys(t *testing.T, secret string) *auth.Keys {
	t.Helper()
	keys, err := auth.NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// token signs a token for alice with keys that expires after ttl; a
// negative ttl gives an expired one.
func token(t *testing.T, keys *auth.Keys, ttl time.Duration) string {
	t.Helper()
	tok, _, err := keys.Sign(auth.Identity{ID: "alice", Name: "alice"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) register(t *testing.T, ins ...registry.Instance) {
	t.Helper()
	for _, in := range ins {
		if err := f.reg.Register(in); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) deregister(t *testing.T, in registry.Instance) {
	t.Helper()
	if err := f.reg.Deregister(in); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) declare(t *testing.T, service string, routes []string) {
	t.Helper()
	if err := f.reg.Declare(service, routes, publicRoutes[service]); err != nil {
		t.Fatal(err)
	}
}

// result is an answer read in full.
type result struct {
	status int
	header http.Header
	body   string
}

// do sends one request through the proxy and reads the answer; body and
// hdr may be nil.
func (f *fixture) do(t *testing.T, method, path string, body io.Reader, hdr http.Header) result {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// bearer is the header set of an authenticated request.
func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// backend starts h on 127.0.0.1:0 until the test ends and returns the
// instance of service on node to register for it.
func backend(t *testing.T, service, node string, routes []string, h http.Handler) registry.Instance {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return registry.Instance{Service: service, Node: node, Addr: srv.Listener.Addr().String(), Routes: routes, Public: publicRoutes[service]}
}

// echo is a backend that answers with its name and reports what it saw of
// the request in X-Seen-* headers, counting its hits.
type echo struct {
	name string
	hits atomic.Int64
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Seen-Authorization", r.Header.Get("Authorization"))
	w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Seen-Path", r.URL.Path)
	_, _ = io.WriteString(w, e.name)
}

// refusedAddr returns an address on which nothing listens: the connection
// is refused.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// wantError checks that res is the wire error of status and code.
func wantError(t *testing.T, res result, status int, code string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d, want %d (body %q)", res.status, status, res.body)
	}
	if got := res.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		t.Fatalf("body %q is not the error shape: %v", res.body, err)
	}
	if body.Error.Code != code {
		t.Errorf("error code = %q, want %q (body %q)", body.Error.Code, code, res.body)
	}
	if body.Error.Message == "" {
		t.Errorf("error message is empty (body %q)", res.body)
	}
}

// eventually polls check until it returns nil or five seconds pass; for
// what the proxy records after the client already has its answer.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		<-tick.C
	}
}
