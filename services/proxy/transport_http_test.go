package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

func TestHandlerAuthAndRouting(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		users := &echo{name: "users"}
		f.register(t, backend(t, "users", "n1", usersRoutes, users))
		// storage is declared, as the runtime declares every catalogue
		// service, but no instance of it runs.
		f.declare(t, "storage", storageRoutes)

		valid := token(t, f.keys, time.Hour)
		forged := token(t, newKeys(t, "another-secret-of-32-bytes-long!"), time.Hour)
		expired := token(t, f.keys, -time.Minute)

		tests := []struct {
			name       string
			method     string
			path       string
			header     http.Header
			wantStatus int
			wantCode   string // the error code; "" for a proxied answer
			wantAuth   string // the Authorization header the backend saw
		}{
			{"unowned path without token", http.MethodGet, "/nobody/owns/this", nil, http.StatusNotFound, "not_found", ""},
			{"unowned path with token", http.MethodGet, "/api/v1/usersx", bearer(valid), http.StatusNotFound, "not_found", ""},
			{"owner has no instance", http.MethodGet, "/api/v1/files/a.txt", bearer(valid), http.StatusServiceUnavailable, "unavailable", ""},
			{"no token", http.MethodGet, "/api/v1/users/alice", nil, http.StatusUnauthorized, "unauthenticated", ""},
			{"forged token", http.MethodGet, "/api/v1/users/alice", bearer(forged), http.StatusUnauthorized, "unauthenticated", ""},
			{"expired token", http.MethodGet, "/api/v1/users/alice", bearer(expired), http.StatusUnauthorized, "unauthenticated", ""},
			{"garbage token", http.MethodGet, "/api/v1/users/alice", bearer("not.a.jwt"), http.StatusUnauthorized, "unauthenticated", ""},
			{"basic auth", http.MethodGet, "/api/v1/users/alice", http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}, http.StatusUnauthorized, "unauthenticated", ""},
			{"no token on no-instance route", http.MethodGet, "/api/v1/files/a.txt", nil, http.StatusUnauthorized, "unauthenticated", ""},
			{"login needs no token", http.MethodPost, "/api/v1/tokens", nil, http.StatusOK, "", ""},
			{"only POST to tokens is public", http.MethodGet, "/api/v1/tokens", nil, http.StatusUnauthorized, "unauthenticated", ""},
			{"below tokens is not public", http.MethodPost, "/api/v1/tokens/x", nil, http.StatusUnauthorized, "unauthenticated", ""},
			{"valid token", http.MethodGet, "/api/v1/users/alice", bearer(valid), http.StatusOK, "", "Bearer " + valid},
			{"valid token, lower-case scheme", http.MethodGet, "/api/v1/users/alice", http.Header{"Authorization": {"bearer " + valid}}, http.StatusOK, "", "bearer " + valid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hitsBefore := users.hits.Load()
				got := f.do(t, tt.method, tt.path, nil, tt.header)
				hits := users.hits.Load() - hitsBefore
				if tt.wantCode != "" {
					wantError(t, got, tt.wantStatus, tt.wantCode)
					if hits != 0 {
						t.Errorf("backend got %d requests, want none", hits)
					}
					if tt.wantStatus == http.StatusUnauthorized && got.header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
					return
				}
				if got.status != tt.wantStatus || got.body != "users" {
					t.Fatalf("got %d %q, want %d %q", got.status, got.body, tt.wantStatus, "users")
				}
				if hits != 1 {
					t.Errorf("backend got %d requests, want 1", hits)
				}
				if seen := got.header.Get("X-Seen-Authorization"); seen != tt.wantAuth {
					t.Errorf("backend saw Authorization %q, want %q", seen, tt.wantAuth)
				}
				if seen := got.header.Get("X-Seen-Path"); seen != tt.path {
					t.Errorf("backend saw path %q, want %q", seen, tt.path)
				}
			})
		}
	})
}

// TestHandlerPublicRoutesFromRegistry checks that the proxy knows public
// routes only from what services declare in the registry: a route is
// public because its owner says so, whatever its path, and a declared
// public route whose service is down is 503, not 401.
func TestHandlerPublicRoutesFromRegistry(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.declare(t, "users", usersRoutes)
		shares := &echo{name: "shares"}
		in := backend(t, "shares", "n1", []string{"/api/v1/shares"}, shares)
		in.Public = []string{"GET /api/v1/shares/{id}"}
		f.register(t, in)

		for _, tc := range []struct {
			name, method, path string
			wantStatus         int
		}{
			{"declared public route", http.MethodGet, "/api/v1/shares/abc", http.StatusOK},
			{"HEAD of a public GET", http.MethodHead, "/api/v1/shares/abc", http.StatusOK},
			{"other method of the path", http.MethodDelete, "/api/v1/shares/abc", http.StatusUnauthorized},
			{"path the pattern does not match", http.MethodGet, "/api/v1/shares/abc/x", http.StatusUnauthorized},
			{"login with users down", http.MethodPost, "/api/v1/tokens", http.StatusServiceUnavailable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := f.do(t, tc.method, tc.path, nil, nil); got.status != tc.wantStatus {
					t.Errorf("status = %d, want %d (body %s)", got.status, tc.wantStatus, got.body)
				}
			})
		}
	})
}

func TestHandlerRequestID(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "users", "n1", usersRoutes, &echo{name: "users"}))
		valid := token(t, f.keys, time.Hour)

		tests := []struct {
			name    string
			path    string
			sent    string // the client's X-Request-Id; "" sends none
			proxied bool   // whether a backend answers
		}{
			{"generated", "/api/v1/users/alice", "", true},
			{"preserved", "/api/v1/users/alice", "client-chosen-id-42", true},
			{"generated on an error", "/nobody/owns/this", "", false},
			{"preserved on an error", "/nobody/owns/this", "client-chosen-id-43", false},
		}
		seen := map[string]bool{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := bearer(valid)
				if tt.sent != "" {
					hdr.Set("X-Request-Id", tt.sent)
				}
				got := f.do(t, http.MethodGet, tt.path, nil, hdr)
				ids := got.header.Values("X-Request-Id")
				if len(ids) != 1 || ids[0] == "" {
					t.Fatalf("X-Request-Id on the answer = %q, want one non-empty value", ids)
				}
				id := ids[0]
				if tt.sent != "" && id != tt.sent {
					t.Errorf("X-Request-Id = %q, want the client's %q", id, tt.sent)
				}
				if tt.sent == "" {
					if seen[id] {
						t.Errorf("generated X-Request-Id %q twice", id)
					}
					seen[id] = true
				}
				if tt.proxied {
					if backend := got.header.Get("X-Seen-Request-Id"); backend != id {
						t.Errorf("backend saw X-Request-Id %q, client got %q", backend, id)
					}
				}
			})
		}
	})
}

// hashing is a backend that answers with the SHA-256 and size of the body
// it received.
func hashing(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %d", hex.EncodeToString(h.Sum(nil)), n)
}

func sumOf(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%s %d", hex.EncodeToString(h[:]), len(b))
}

// onlyReader hides a reader's length, so the request is sent chunked.
type onlyReader struct{ io.Reader }

func TestHandlerRetriesRefusedInstance(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		tests := []struct {
			name       string
			method     string
			body       func() io.Reader
			live       bool // whether the second instance is up
			wantStatus int
			wantBody   string
		}{
			{"GET", http.MethodGet, func() io.Reader { return nil }, true, http.StatusOK, sumOf(nil)},
			{"PUT with length", http.MethodPut, func() io.Reader { return bytes.NewReader(payload) }, true, http.StatusOK, sumOf(payload)},
			{"PUT chunked", http.MethodPut, func() io.Reader { return onlyReader{bytes.NewReader(payload)} }, true, http.StatusOK, sumOf(payload)},
			{"GET, every instance refuses", http.MethodGet, func() io.Reader { return nil }, false, http.StatusServiceUnavailable, ""},
			{"PUT, every instance refuses", http.MethodPut, func() io.Reader { return bytes.NewReader(payload) }, false, http.StatusServiceUnavailable, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A fresh proxy per case: its first request starts at the
				// first instance in ID order, node "a", which refuses.
				f := newFixture(t, plane)
				dead := registry.Instance{Service: "storage", Node: "a", Addr: refusedAddr(t), Routes: storageRoutes}
				second := registry.Instance{Service: "storage", Node: "b", Addr: refusedAddr(t), Routes: storageRoutes}
				if tt.live {
					second = backend(t, "storage", "b", storageRoutes, http.HandlerFunc(hashing))
				}
				f.register(t, dead, second)
				valid := token(t, f.keys, time.Hour)

				got := f.do(t, tt.method, "/api/v1/files/x", tt.body(), bearer(valid))
				if tt.wantBody == "" {
					wantError(t, got, tt.wantStatus, "unavailable")
					if strings.Contains(got.body, dead.Addr) || strings.Contains(got.body, second.Addr) {
						t.Errorf("error %q names an upstream address", got.body)
					}
					return
				}
				if got.status != tt.wantStatus || got.body != tt.wantBody {
					t.Errorf("got %d %q, want %d %q", got.status, got.body, tt.wantStatus, tt.wantBody)
				}
			})
		}
	})
}

func TestHandlerPassesBackendErrorsThrough(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		tests := []struct {
			name        string
			status      int
			contentType string
			body        string
		}{
			{"json not found", http.StatusNotFound, "application/json; charset=utf-8", `{"error":{"code":"not_found","message":"file not found: a.txt"}}` + "\n"},
			{"json conflict", http.StatusConflict, "application/json; charset=utf-8", `{"error":{"code":"conflict","message":"user exists"}}` + "\n"},
			{"json unavailable", http.StatusServiceUnavailable, "application/json; charset=utf-8", `{"error":{"code":"unavailable","message":"store is closing"}}` + "\n"},
			{"plain internal error", http.StatusInternalServerError, "text/plain; charset=utf-8", "boom\n"},
			{"teapot", http.StatusTeapot, "text/plain", "short and stout"},
			{"bad request without body", http.StatusBadRequest, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, plane)
				f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tt.contentType != "" {
						w.Header().Set("Content-Type", tt.contentType)
					}
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.body)
				})))
				got := f.do(t, http.MethodGet, "/api/v1/files/a.txt", nil, bearer(token(t, f.keys, time.Hour)))
				if got.status != tt.status || got.body != tt.body {
					t.Errorf("got %d %q, want %d %q", got.status, got.body, tt.status, tt.body)
				}
				if tt.contentType != "" && got.header.Get("Content-Type") != tt.contentType {
					t.Errorf("Content-Type = %q, want %q", got.header.Get("Content-Type"), tt.contentType)
				}
			})
		}
	})
}

func TestHandlerCountsRequests(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "users", "n1", usersRoutes, &echo{name: "users"}))
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gone", http.StatusGone)
		})))
		f.declare(t, "activity", []string{"/api/v1/activities"})
		valid := bearer(token(t, f.keys, time.Hour))

		requests := []struct {
			method, path string
			header       http.Header
		}{
			{http.MethodGet, "/api/v1/users/alice", valid},
			{http.MethodGet, "/api/v1/users/bob", valid},
			{http.MethodPost, "/api/v1/tokens", nil},
			{http.MethodGet, "/api/v1/users/alice", nil},
			{http.MethodGet, "/api/v1/files/a.txt", valid},
			{http.MethodGet, "/api/v1/activities", valid},
			{http.MethodGet, "/nobody/owns/this", valid},
		}
		for _, r := range requests {
			f.do(t, r.method, r.path, nil, r.header)
		}
		want := map[[2]string]float64{
			{"users", "200"}:    3,
			{"users", "401"}:    1,
			{"storage", "410"}:  1,
			{"activity", "503"}: 1,
			{"", "404"}:         1,
		}
		// The proxy counts after the answer is on its way, so the client may
		// be ahead of the counter for a moment.
		eventually(t, func() error {
			got, err := counts(f, "ocis_proxy_requests_total")
			if err != nil {
				return err
			}
			if !maps.Equal(got, want) {
				return fmt.Errorf("ocis_proxy_requests_total = %v, want %v", got, want)
			}
			return nil
		})
		for service, want := range map[string]uint64{"users": 4, "storage": 1, "activity": 1, "": 1} {
			t.Run("duration of "+service, func(t *testing.T) {
				eventually(t, func() error {
					got, err := observations(f, "ocis_proxy_request_duration_seconds", service)
					if err != nil {
						return err
					}
					if got != want {
						return fmt.Errorf("observations for %q = %d, want %d", service, got, want)
					}
					return nil
				})
			})
		}
	})
}

// counts returns a counter vector by its service and code labels.
func counts(f *fixture, name string) (map[[2]string]float64, error) {
	mf, err := family(f, name)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]float64{}
	for _, m := range mf.GetMetric() {
		l := labels(m)
		out[[2]string{l["service"], l["code"]}] = m.GetCounter().GetValue()
	}
	return out, nil
}

// observations returns the sample count of a histogram for service.
func observations(f *fixture, name, service string) (uint64, error) {
	mf, err := family(f, name)
	if err != nil {
		return 0, err
	}
	for _, m := range mf.GetMetric() {
		if labels(m)["service"] == service {
			return m.GetHistogram().GetSampleCount(), nil
		}
	}
	return 0, nil
}

func family(f *fixture, name string) (*dto.MetricFamily, error) {
	mfs, err := f.metrics.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf, nil
		}
	}
	return nil, fmt.Errorf("no metric %s", name)
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Deregistering takes effect on the very next request: there is no cache
// to expire.
func TestHandlerFollowsDeregistration(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.declare(t, "users", usersRoutes)
		a, b := &echo{name: "a"}, &echo{name: "b"}
		inA := backend(t, "users", "a", usersRoutes, a)
		inB := backend(t, "users", "b", usersRoutes, b)
		f.register(t, inA, inB)
		// storage is not declared: once its last instance goes, no one owns
		// its routes any more.
		inS := backend(t, "storage", "a", storageRoutes, &echo{name: "storage"})
		f.register(t, inS)
		valid := bearer(token(t, f.keys, time.Hour))

		steps := []struct {
			name       string
			change     func(t *testing.T)
			path       string
			requests   int
			wantBodies []string // one per request; nil for an error
			wantStatus int
			wantCode   string
		}{
			{"both registered", func(*testing.T) {}, "/api/v1/users/x", 4, []string{"a", "a", "b", "b"}, http.StatusOK, ""},
			{"a deregistered", func(t *testing.T) { f.deregister(t, inA) }, "/api/v1/users/x", 3, []string{"b", "b", "b"}, http.StatusOK, ""},
			{"a back", func(t *testing.T) { f.register(t, inA) }, "/api/v1/users/x", 4, []string{"a", "a", "b", "b"}, http.StatusOK, ""},
			{"both deregistered, route declared", func(t *testing.T) { f.deregister(t, inA); f.deregister(t, inB) }, "/api/v1/users/x", 2, nil, http.StatusServiceUnavailable, "unavailable"},
			{"storage running", func(*testing.T) {}, "/api/v1/files/x", 1, []string{"storage"}, http.StatusOK, ""},
			{"storage deregistered, route undeclared", func(t *testing.T) { f.deregister(t, inS) }, "/api/v1/files/x", 1, nil, http.StatusNotFound, "not_found"},
		}
		// The balancer's counter runs on across steps, so answers are compared
		// sorted: which instance comes first depends on the steps before.
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				st.change(t)
				hitsA, hitsB := a.hits.Load(), b.hits.Load()
				var gotBodies []string
				for range st.requests {
					got := f.do(t, http.MethodGet, st.path, nil, valid)
					if st.wantCode != "" {
						wantError(t, got, st.wantStatus, st.wantCode)
						continue
					}
					if got.status != st.wantStatus {
						t.Errorf("status = %d, want %d", got.status, st.wantStatus)
					}
					gotBodies = append(gotBodies, got.body)
				}
				slices.Sort(gotBodies)
				if st.wantBodies != nil && !slices.Equal(gotBodies, st.wantBodies) {
					t.Errorf("answers = %q, want %q", gotBodies, st.wantBodies)
				}
				// A deregistered instance that still runs gets nothing.
				wantA, wantB := int64(count(st.wantBodies, "a")), int64(count(st.wantBodies, "b"))
				if st.path == "/api/v1/users/x" && (a.hits.Load()-hitsA != wantA || b.hits.Load()-hitsB != wantB) {
					t.Errorf("hits a=%d b=%d, want a=%d b=%d", a.hits.Load()-hitsA, b.hits.Load()-hitsB, wantA, wantB)
				}
			})
		}
	})
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// dropping listens on 127.0.0.1:0 and drops every connection after reading
// a little of it: an instance that accepted a request and died under it.
func dropping(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			_, _ = io.ReadFull(conn, make([]byte, 4<<10))
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Once a byte of a request may have reached an instance, retrying on
// another could run it twice; the proxy answers 503 instead.
func TestHandlerDoesNotRetryAfterSending(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		payload := bytes.Repeat([]byte("x"), 1<<20)
		f := newFixture(t, plane)
		second := &echo{name: "second"}
		f.register(t,
			registry.Instance{Service: "storage", Node: "a", Addr: dropping(t), Routes: storageRoutes},
			backend(t, "storage", "b", storageRoutes, second),
		)
		got := f.do(t, http.MethodPut, "/api/v1/files/x", bytes.NewReader(payload), bearer(token(t, f.keys, time.Hour)))
		wantError(t, got, http.StatusServiceUnavailable, "unavailable")
		if n := second.hits.Load(); n != 0 {
			t.Errorf("second instance got %d requests, want none", n)
		}
	})
}
