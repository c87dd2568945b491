package supervisor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// A service of this process hands over its readiness: the probe reads it
// directly, with the same growing pauses as over HTTP, and never dials.
func TestReadyProbeInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var checks atomic.Int32
		a := service.Addrs{Debug: "127.0.0.1:1", Ready: func() bool { return checks.Add(1) >= 4 }}
		probe := readyProbe(&http.Client{Transport: noDial{}})
		start := time.Now()
		if err := probe(context.Background(), a); err != nil {
			t.Fatalf("probe: %v", err)
		}
		// Not ready at the first three checks: pauses of 1, 2 and 4 ms.
		if got, want := time.Since(start), 7*time.Millisecond; got != want {
			t.Errorf("ready after %s, want %s", got, want)
		}
		if got := checks.Load(); got != 4 {
			t.Errorf("%d checks, want 4", got)
		}
	})
}

// A probe of a service that never becomes ready ends with its context.
func TestReadyProbeInProcessCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a := service.Addrs{Ready: func() bool { return false }}
		if err := readyProbe(&http.Client{Transport: noDial{}})(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("probe: %v, want the context's deadline", err)
		}
	})
}

// A service that hands over no readiness is asked on /readyz of its debug
// address until it answers 200.
func TestReadyProbeHTTP(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if asked.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := service.Addrs{Debug: strings.TrimPrefix(srv.URL, "http://")}
	if err := readyProbe(srv.Client())(ctx, a); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := asked.Load(); got != 3 {
		t.Errorf("/readyz asked %d times, want 3", got)
	}
}

// noDial is a transport that fails every request: an in-process probe
// must not use it.
type noDial struct{}

func (noDial) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("the probe dialled")
}
