package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/valyala/fasthttp"
)

// serveBridge serves h through a bridge on 127.0.0.1:0 until the test
// ends, logging to logger, and returns its URL.
func serveBridge(t *testing.T, logger log.Logger, h http.Handler) string {
	t.Helper()
	b := &bridge{logger: logger, h: h}
	calls := newFastCalls()
	srv := &fasthttp.Server{
		Handler: func(rc *fasthttp.RequestCtx) {
			b.serve(rc, calls.begin(rc.Conn()))
		},
		StreamRequestBody:  true,
		MaxRequestBodySize: 1,
		Logger:             fastLogger{log.NewNopLogger()},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// TestBridgePanicLogged checks that a Handler's panic cuts its answer and
// is logged with its stack, as net/http logs it, unless it is
// http.ErrAbortHandler, which asks for a cut answer and nothing more.
func TestBridgePanicLogged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		panic   any
		wantLog bool
	}{
		{"panic", "boom", true},
		{"abort", http.ErrAbortHandler, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs servicetest.Logs
			url := serveBridge(t, log.NewLogfmtLogger(&logs), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "part of an answer")
				panic(tc.panic)
			}))
			client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			resp, err := client.Post(url+"/api/v1/files/a.txt", "text/plain", strings.NewReader("data"))
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Error("the answer looked whole, want it cut")
			}
			got := logs.String()
			if !tc.wantLog {
				if got != "" {
					t.Errorf("logged %q, want nothing", got)
				}
				return
			}
			for _, want := range []string{"level=error", `msg="panic serving request"`, "err=boom", "stack=", "TestBridgePanicLogged"} {
				if !strings.Contains(got, want) {
					t.Errorf("log %q lacks %q", got, want)
				}
			}
		})
	}
}

// TestBridgeRequestTrailers checks that the Handler finds a chunked
// body's trailers in its request's Trailer once it read the body, as on
// net/http: announced before, with their values after.
func TestBridgeRequestTrailers(t *testing.T) {
	seen := make(chan http.Header, 2)
	url := serveBridge(t, log.NewNopLogger(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Trailer.Clone()
		_, _ = io.Copy(io.Discard, r.Body)
		seen <- r.Trailer.Clone()
	}))
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/files/a.txt", io.NopCloser(strings.NewReader("data")))
	if err != nil {
		t.Fatal(err)
	}
	req.Trailer = http.Header{"X-Sum": {"abc"}}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, want := range []string{"map[X-Sum:[]]", "map[X-Sum:[abc]]"} {
		if got := fmt.Sprint(<-seen); got != want {
			t.Errorf("Trailer = %s, want %s", got, want)
		}
	}
}
