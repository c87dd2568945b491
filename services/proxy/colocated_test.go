package proxy_test

import (
	"net/http"
	"testing"
	"time"
)

// TestLocalInstanceIsPreferred registers one remote and one in-process
// instance of storage: every request goes to the in-process handler, with
// the proxy's request ID and the caller's token, and none over the network.
func TestLocalInstanceIsPreferred(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		remote, local := &echo{name: "remote"}, &echo{name: "local"}
		f.declare(t, "storage", storageRoutes)
		in := backend(t, "storage", "other-node", storageRoutes, remote)
		here := backend(t, "storage", "this-node", storageRoutes, local)
		here.Local = local
		f.register(t, in, here)

		tok := token(t, f.keys, time.Hour)
		for range 6 {
			res := f.do(t, http.MethodGet, "/api/v1/files/x", nil, bearer(tok))
			if res.status != http.StatusOK || res.body != "local" {
				t.Fatalf("got %d %q, want 200 from the local instance", res.status, res.body)
			}
			if res.header.Get("X-Seen-Request-Id") == "" || res.header.Get("X-Seen-Authorization") != "Bearer "+tok {
				t.Errorf("local handler saw request id %q and auth %q", res.header.Get("X-Seen-Request-Id"), res.header.Get("X-Seen-Authorization"))
			}
		}
		if got := remote.hits.Load(); got != 0 {
			t.Errorf("remote instance got %d requests, want 0 while a local one runs", got)
		}
		f.deregister(t, here)
		if res := f.do(t, http.MethodGet, "/api/v1/files/x", nil, bearer(tok)); res.body != "remote" {
			t.Errorf("after the local instance left: %q, want the remote one", res.body)
		}
	})
}
