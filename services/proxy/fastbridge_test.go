package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/services/proxy"
)

// TestBridgeTrailers sends DELETEs through the proxy to an instance that
// announces many trailers and answers an empty body: the Handler writes
// the trailers into its answer's header after the head was taken, which
// the fasthttp plane's bridge must not be reading then (run with -race).
func TestBridgeTrailers(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			names := make([]string, 0, 64)
			for i := range 64 {
				names = append(names, fmt.Sprintf("X-Sum-%d", i))
			}
			w.Header().Set("Trailer", strings.Join(names, ", "))
			w.WriteHeader(http.StatusOK)
			for _, k := range names {
				w.Header().Set(k, "v")
			}
		})))
		// Many at once, so that the Handler often writes its trailers
		// before the bridge's goroutine took the head.
		hdr := bearer(token(t, f.keys, time.Hour))
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 30 {
					req, err := http.NewRequest(http.MethodDelete, f.url+"/api/v1/files/a.txt", nil)
					if err != nil {
						t.Error(err)
						return
					}
					req.Header = hdr.Clone()
					resp, err := f.client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || len(b) != 0 {
						t.Errorf("DELETE = %d %q %v, want 200 with no body", resp.StatusCode, b, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestBridgeInvalidHeaderName sends a request whose header name holds a
// space, which fasthttp reads but net/http refuses: the bridge refuses it
// too, with 400 invalid_argument in the wire shape, and never hands it to
// an instance.
func TestBridgeInvalidHeaderName(t *testing.T) {
	f := newFixture(t, proxy.PlaneFastHTTP)
	hits := &echo{name: "storage"}
	f.register(t, backend(t, "storage", "n1", storageRoutes, hits))
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := "DELETE /api/v1/files/a.txt HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer " + token(t, f.keys, time.Hour) + "\r\nX Y: v\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatal(err)
	}
	wantError(t, result{status: resp.StatusCode, header: resp.Header, body: body.String()}, http.StatusBadRequest, "invalid_argument")
	if got := hits.hits.Load(); got != 0 {
		t.Errorf("the instance got %d requests, want none", got)
	}
}

// TestRequestTrailerAnnounced sends a chunked upload that announces a
// trailer: the instance sees it announced, as a key of its request's
// Trailer and not as a header, on both planes. (Its value does not reach
// the instance on either: httputil.ReverseProxy forwards a copy of the
// request's Trailer taken before the body was read.)
func TestRequestTrailerAnnounced(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		seen := make(chan string, 1)
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, announced := r.Trailer["X-Sum"]
			seen <- fmt.Sprintf("announced=%t header=%q", announced, r.Header.Get("Trailer"))
		})))
		req, err := http.NewRequest(http.MethodPost, f.url+"/api/v1/files/a.txt", io.NopCloser(strings.NewReader("data")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = bearer(token(t, f.keys, time.Hour))
		req.Trailer = http.Header{"X-Sum": {"abc"}}
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got, want := <-seen, `announced=true header=""`; got != want {
			t.Errorf("the instance saw %s, want %s", got, want)
		}
	})
}

// TestBridgeCutAnswer sends uploads whose instance breaks its answer off
// mid-body, chunked and with a length: the client's answer must be cut,
// never end as if whole, on both planes.
func TestBridgeCutAnswer(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		for _, length := range []string{"", "100"} {
			f := newFixture(t, plane)
			f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if length != "" {
					w.Header().Set("Content-Length", length)
				}
				_, _ = io.WriteString(w, "first piece")
				http.NewResponseController(w).Flush()
				panic(http.ErrAbortHandler)
			})))
			req, err := http.NewRequest(http.MethodPost, f.url+"/api/v1/files/a.txt", strings.NewReader("data"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = bearer(token(t, f.keys, time.Hour))
			// An answer cut before its head reached the client is an
			// error of Do; one cut after, of the body's read.
			resp, err := f.client.Do(req)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("Content-Length %q: the answer %q ended whole, want it cut", length, b)
			}
		}
	})
}
