package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// TestColocatedCallsDrain checks that a stopping service waits for the
// in-process calls under way and refuses new ones with 503.
func TestColocatedCallsDrain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusTeapot)
	})
	base := Base{HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", ShutdownTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, func(a Addrs) { addrs <- a }, Parts{
			Logger: log.NewNopLogger(), Base: &base, Handler: h, Registry: prometheus.NewRegistry(),
		})
	}()
	local := (<-addrs).Handler

	inFlight := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		local.ServeHTTP(inFlight, httptest.NewRequest(http.MethodGet, "/x", nil))
		close(served)
	}()
	<-entered
	cancel()
	// Serve must not return while the call is under way.
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with an in-process call under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	late := httptest.NewRecorder()
	waitClosed(t, local, late)
	if late.Code != http.StatusServiceUnavailable {
		t.Errorf("call after the stop began: %d, want 503", late.Code)
	}
	close(release)
	<-served
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if inFlight.Code != http.StatusTeapot {
		t.Errorf("in-flight call answered %d, want it to complete (418)", inFlight.Code)
	}
}

// waitClosed calls h until it refuses, as it does once the drain began.
func waitClosed(t *testing.T, h http.Handler, rec *httptest.ResponseRecorder) {
	t.Helper()
	c := h.(*colocated)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the drain did not begin")
		}
		time.Sleep(time.Millisecond)
	}
}
