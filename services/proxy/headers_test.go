package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/services/proxy"
)

// TestHeadersBothWays sends requests carrying hop-by-hop headers and a
// forged X-Forwarded-For through the proxy, on the direct path (GET,
// HEAD) and the reverse proxy's (PUT), to an instance that answers with
// hop-by-hop headers of its own: neither side sees the other's, the
// instance sees the client's address and the proxy's host in
// X-Forwarded-*, and a HEAD answer keeps its length.
func TestHeadersBothWays(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			for _, k := range []string{"X-Secret", "Keep-Alive", "Te", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Kept"} {
				w.Header().Set("X-Seen-"+k, strings.Join(r.Header.Values(k), ","))
			}
			w.Header().Set("Connection", "X-Hop")
			w.Header().Set("X-Hop", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		})))
		proxyHost := strings.TrimPrefix(f.url, "http://")
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut} {
			t.Run(method, func(t *testing.T) {
				hdr := bearer(token(t, f.keys, time.Hour))
				hdr.Set("Connection", "X-Secret")
				hdr.Set("X-Secret", "s")
				hdr.Set("Keep-Alive", "timeout=1")
				hdr.Set("Te", "deflate")
				hdr.Set("X-Forwarded-For", "10.0.0.1")
				hdr.Set("X-Kept", "k")
				var body io.Reader
				if method == http.MethodPut {
					body = strings.NewReader("data")
				}
				res := f.do(t, method, "/api/v1/files/h.txt", body, hdr)
				if res.status != http.StatusOK {
					t.Fatalf("status %d, want 200 (body %q)", res.status, res.body)
				}
				want := map[string]string{
					"X-Seen-X-Secret": "", "X-Seen-Keep-Alive": "", "X-Seen-Te": "",
					"X-Seen-X-Forwarded-For": "127.0.0.1", "X-Seen-X-Forwarded-Host": proxyHost,
					"X-Seen-X-Forwarded-Proto": "http", "X-Seen-X-Kept": "k",
					"X-Hop": "", "Keep-Alive": "", "Content-Length": "5",
				}
				for k, v := range want {
					if got := res.header.Get(k); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				wantBody := "hello"
				if method == http.MethodHead {
					wantBody = ""
				}
				if res.body != wantBody {
					t.Errorf("body %q, want %q", res.body, wantBody)
				}
			})
		}
	})
}

// TestHeadBound sends a request whose head is 20 KiB: net/http takes heads
// up to 64 KiB, the fasthttp plane up to 16 KiB (its per-connection read
// buffer, docs/benchmarks.md), and refuses a larger one with 413 in the
// wire shape.
func TestHeadBound(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"}))
		hdr := bearer(token(t, f.keys, time.Hour))
		hdr.Set("X-Big", strings.Repeat("a", 20<<10))
		res := f.do(t, http.MethodGet, "/api/v1/files/x", nil, hdr)
		if plane == proxy.PlaneFastHTTP {
			wantError(t, res, http.StatusRequestEntityTooLarge, "too_large")
			return
		}
		if res.status != http.StatusOK || res.body != "storage" {
			t.Errorf("got %d %q, want 200 from storage", res.status, res.body)
		}
	})
}

// TestEveryConnectionLineCounts sends two Connection lines, the second
// naming a header: that header is hop-by-hop and never reaches the
// instance, on either plane.
func TestEveryConnectionLineCounts(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Seen-Secret", r.Header.Get("X-Secret"))
		})))
		res := rawDo(t, f.url, "GET /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token(t, f.keys, time.Hour)+
			"\r\nConnection: keep-alive\r\nConnection: X-Secret\r\nX-Secret: hop\r\n\r\n")
		if res.status != http.StatusOK {
			t.Fatalf("status %d, want 200 (body %q)", res.status, res.body)
		}
		if got := res.header.Get("X-Seen-Secret"); got != "" {
			t.Errorf("the instance got X-Secret %q, which the second Connection line names", got)
		}
	})
}

// TestRequestIDAfterContinue uploads with Expect: 100-continue, which the
// instance answers with a 100 before its final answer: the final answer
// still carries the request's ID, as every other does.
func TestRequestIDAfterContinue(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"}))
		hdr := bearer(token(t, f.keys, time.Hour))
		hdr.Set("Expect", "100-continue")
		hdr.Set("X-Request-Id", "upload-1")
		res := f.do(t, http.MethodPut, "/api/v1/files/a.txt", strings.NewReader("data"), hdr)
		if res.status != http.StatusOK {
			t.Fatalf("status %d, want 200 (body %q)", res.status, res.body)
		}
		if got := res.header.Values("X-Request-Id"); len(got) != 1 || got[0] != "upload-1" {
			t.Errorf("X-Request-Id = %q, want [upload-1]", got)
		}
	})
}
