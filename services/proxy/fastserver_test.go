package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// rawDo writes req, a request as bytes, on a new connection to the proxy
// at url and reads one answer.
func rawDo(t *testing.T, url, req string) result {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestMalformedLogsNoToken sends requests fasthttp cannot read, one with
// no HTTP version in its request line, carrying a bearer token: each is
// 400 invalid_argument, and nothing of them, the token least of all,
// reaches the log, where net/http logs nothing either.
func TestMalformedLogsNoToken(t *testing.T) {
	const secret = "eyJ-secret-token-never-logged"
	var logs servicetest.Logs
	logger := log.NewLogfmtLogger(&logs)
	keys := newKeys(t, testSecret)
	h := proxy.NewHandler(logger, proxy.NewBalancer(registry.NewMemory()), keys, prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewFastServer(logger, h, proxy.FastOptions{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var stop sync.Once
	shutdown := func() { stop.Do(func() { srv.Shutdown(time.Second); <-done }) }
	t.Cleanup(shutdown)
	url := "http://" + ln.Addr().String()
	for _, req := range []string{
		"GET /api/v1/files/a.txt\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
		"GET /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nBad Header Line\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
	} {
		res := rawDo(t, url, req)
		wantError(t, res, http.StatusBadRequest, "invalid_argument")
	}
	// fasthttp logs once it is done with a connection: all are, after
	// the stop.
	shutdown()
	if got := logs.String(); strings.Contains(got, secret) || strings.Contains(got, "fasthttp") {
		t.Errorf("the log has the request or fasthttp's line:\n%s", got)
	}
}

// TestExpectRefusedBeforeBody sends uploads that announce their body with
// "Expect: 100-continue" and send only their headers: one without a token
// and one to a path no service owns are refused at once with their wire
// error, and no 100 Continue comes before it, on both planes.
func TestExpectRefusedBeforeBody(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"}))
		for _, tc := range []struct {
			name, path, auth string
			status           int
			code             string
		}{
			{"no token", "/api/v1/files/a.txt", "", http.StatusUnauthorized, "unauthenticated"},
			{"bad token", "/api/v1/files/a.txt", "Authorization: Bearer nope\r\n", http.StatusUnauthorized, "unauthenticated"},
			{"unowned path", "/nope", "Authorization: Bearer " + token(t, f.keys, time.Hour) + "\r\n", http.StatusNotFound, "not_found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := rawDo(t, f.url, "PUT "+tc.path+" HTTP/1.1\r\nHost: x\r\n"+tc.auth+
					"Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n")
				wantError(t, res, tc.status, tc.code)
			})
		}
	})
}

// TestExpectAdmitted sends an authenticated upload with "Expect:
// 100-continue": it gets its 100, sends its body, and the instance's
// answer comes back.
func TestExpectAdmitted(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"}))
		hdr := bearer(token(t, f.keys, time.Hour))
		hdr.Set("Expect", "100-continue")
		res := f.do(t, http.MethodPut, "/api/v1/files/a.txt", strings.NewReader("data"), hdr)
		if res.status != http.StatusOK || res.body != "storage" {
			t.Errorf("got %d %q, want 200 from storage", res.status, res.body)
		}
	})
}

// rawTarget is a backend that answers with the request target it was
// sent, as sent.
func rawTarget() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Target", r.RequestURI)
		w.Header().Set("X-Seen-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
		_, _ = io.WriteString(w, "storage")
	})
}

// TestTargetAsSent sends targets that a cleaned or decoded path would
// route or forward otherwise: both planes route on the path as sent (an
// unowned one is 404) and forward the target as sent, so the service's
// own checks see its "%2e%2e" and its "%2F".
func TestTargetAsSent(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, rawTarget()))
		auth := "Authorization: Bearer " + token(t, f.keys, time.Hour) + "\r\n"
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			body := ""
			if method == http.MethodPut {
				body = "Content-Length: 1\r\n\r\nx"
			} else {
				body = "\r\n"
			}
			for _, target := range []string{"//api/v1/files/a.txt", "/x/../api/v1/files/a.txt", "/api/v1/users/../files/a.txt"} {
				t.Run(method+" "+target, func(t *testing.T) {
					res := rawDo(t, f.url, method+" "+target+" HTTP/1.1\r\nHost: x\r\n"+auth+body)
					wantError(t, res, http.StatusNotFound, "not_found")
				})
			}
			for _, target := range []string{"/api/v1/files/x/%2e%2e/a.txt", "/api/v1/files/a%2Fb%20c?q=%2F", "/api/v1/files/a!b'c"} {
				t.Run(method+" "+target, func(t *testing.T) {
					res := rawDo(t, f.url, method+" "+target+" HTTP/1.1\r\nHost: x\r\n"+auth+body)
					if res.status != http.StatusOK || res.header.Get("X-Seen-Target") != target {
						t.Errorf("got %d, target %q upstream, want 200 and %q", res.status, res.header.Get("X-Seen-Target"), target)
					}
				})
			}
		}
		// A GET takes the direct path on fasthttp, a PUT the bridge.
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			t.Run("absolute form "+method, func(t *testing.T) {
				body := "\r\n"
				if method == http.MethodPut {
					body = "Content-Length: 1\r\n\r\nx"
				}
				res := rawDo(t, f.url, method+" http://evil.example:81/api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\n"+auth+body)
				if res.status != http.StatusOK || res.header.Get("X-Seen-Target") != "/api/v1/files/a.txt" {
					t.Errorf("got %d, target %q upstream, want 200 and the path", res.status, res.header.Get("X-Seen-Target"))
				}
				if got := res.header.Get("X-Seen-Forwarded-Host"); got != "evil.example:81" {
					t.Errorf("X-Forwarded-Host = %q, want the target's host", got)
				}
			})
		}
	})
}

// TestInvalidHeaderName sends a header whose name has a space: 400
// invalid_argument on both planes, and the instance never sees it.
func TestInvalidHeaderName(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		e := &echo{name: "storage"}
		f.register(t, backend(t, "storage", "n1", storageRoutes, e))
		auth := "Authorization: Bearer " + token(t, f.keys, time.Hour) + "\r\n"
		res := rawDo(t, f.url, "GET /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\n"+auth+"X Y: v\r\n\r\n")
		if plane == proxy.PlaneNetHTTP {
			// net/http's server refuses it before any handler, in its
			// own words.
			if res.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.status)
			}
		} else {
			wantError(t, res, http.StatusBadRequest, "invalid_argument")
		}
		if n := e.hits.Load(); n != 0 {
			t.Errorf("the instance was called %d times, want 0", n)
		}
	})
}

// TestServerLevelAnswers sends what net/http's server answers itself:
// "OPTIONS *" is 200, an HTTP/2.0 request line 505, and no answer has a
// Server header.
func TestServerLevelAnswers(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		if res := rawDo(t, f.url, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"); res.status != http.StatusOK {
			t.Errorf("OPTIONS *: status %d, want 200", res.status)
		}
		if res := rawDo(t, f.url, "GET /api/v1/files/a HTTP/2.0\r\nHost: x\r\n\r\n"); res.status != http.StatusHTTPVersionNotSupported {
			t.Errorf("HTTP/2.0: status %d, want 505", res.status)
		}
		res := rawDo(t, f.url, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
		wantError(t, res, http.StatusNotFound, "not_found")
		if got := res.header.Get("Server"); got != "" {
			t.Errorf("Server = %q, want none", got)
		}
	})
}

// TestMalformedTargetAndNames sends a target net/http cannot parse (a
// bad escape) and a header name that is not a token, on a read and on an
// upload that expects 100 Continue: each is 400, in the wire shape on
// the fasthttp plane (net/http's server answers its own text), with no
// 100 first, and the instance never sees them.
func TestMalformedTargetAndNames(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		e := &echo{name: "storage"}
		f.register(t, backend(t, "storage", "n1", storageRoutes, e))
		auth := "Authorization: Bearer " + token(t, f.keys, time.Hour) + "\r\n"
		for name, req := range map[string]string{
			"GET bad escape":     "GET /api/v1/files/a%zz HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
			"PUT bad escape":     "PUT /api/v1/files/a%zz HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n",
			"PUT bad name":       "PUT /api/v1/files/a HTTP/1.1\r\nHost: x\r\n" + auth + "X Y: v\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
			"PUT bad name, body": "PUT /api/v1/files/a HTTP/1.1\r\nHost: x\r\n" + auth + "X Y: v\r\nContent-Length: 1\r\n\r\nx",
		} {
			t.Run(name, func(t *testing.T) {
				res := rawDo(t, f.url, req)
				if plane == proxy.PlaneNetHTTP {
					if res.status != http.StatusBadRequest {
						t.Errorf("status %d, want 400", res.status)
					}
					return
				}
				wantError(t, res, http.StatusBadRequest, "invalid_argument")
			})
		}
		if n := e.hits.Load(); n != 0 {
			t.Errorf("the instance was called %d times, want 0", n)
		}
	})
}
