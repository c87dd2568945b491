package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientGoneCutsInstance sends requests and leaves before their end,
// once while the instance has not answered yet and once while a body
// streams back: the proxy must cut its request to the instance, so the
// instance sees it end, and count the request as 499. GETs go over the
// proxy's own connections (on fasthttp, the direct path); DELETEs and
// POSTs, whose body arrived whole, through the reverse proxy (on
// fasthttp, the bridge), where nothing reads the client's connection
// any more.
func TestClientGoneCutsInstance(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
			t.Run(method, func(t *testing.T) { testClientGone(t, plane, method) })
		}
	})
}

func testClientGone(t *testing.T, plane, method string) {
	t.Helper()
	for _, tc := range []struct {
		name string
		// answer is what the instance sends before it waits for the
		// request to end.
		answer func(w http.ResponseWriter)
	}{
		{"before the answer", func(http.ResponseWriter) {}},
		{"while the body streams", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, "first piece")
			http.NewResponseController(w).Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, plane)
			entered := make(chan struct{})
			ended := make(chan struct{})
			f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Read whole, so the instance's server watches
				// its connection.
				_, _ = io.Copy(io.Discard, r.Body)
				tc.answer(w)
				close(entered)
				select {
				case <-r.Context().Done():
					close(ended)
				case <-time.After(10 * time.Second):
				}
			})))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("data")
			}
			req, err := http.NewRequestWithContext(ctx, method, f.url+"/api/v1/files/a.txt", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = bearer(token(t, f.keys, time.Hour))
			errs := make(chan error, 1)
			go func() {
				resp, err := f.client.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				errs <- err
			}()
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("the request never reached the instance")
			}
			cancel()
			if err := <-errs; err == nil {
				t.Fatal("the request ended without error, want it cancelled")
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the instance's request did not end after the client went away")
			}
			if tc.name != "before the answer" {
				// Once the status went out, it is what the proxy
				// counts: 200 whose body was cut.
				return
			}
			eventually(t, func() error {
				got, err := counts(f, "ocis_proxy_requests_total")
				if err != nil {
					return err
				}
				if got[[2]string{"storage", "499"}] != 1 {
					return fmt.Errorf("ocis_proxy_requests_total = %v, want one storage 499", got)
				}
				return nil
			})
		})
	}
}
