package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
