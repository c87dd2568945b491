package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// served is a Serve running in a test.
type served struct {
	addrs  Addrs
	cancel context.CancelFunc
	done   chan error
}

func serve(t *testing.T, drain time.Duration, logger log.Logger, h http.Handler) *served {
	t.Helper()
	base := Base{HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", ShutdownTimeout: drain}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan error, 1)}
	addrs := make(chan Addrs, 1)
	go func() {
		s.done <- Serve(ctx, func(a Addrs) { addrs <- a }, Parts{
			Logger: logger, Base: &base, Handler: h, Registry: prometheus.NewRegistry(),
		})
	}()
	select {
	case s.addrs = <-addrs:
	case err := <-s.done:
		t.Fatalf("Serve returned %v before it was up", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not come up")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(drain + cutGrace + forceGrace + 5*time.Second):
			t.Error("Serve did not return")
		}
	})
	return s
}

// TestColocatedCallsDrain checks that a stopping service waits for the
// in-process calls under way and refuses new ones with 503.
func TestColocatedCallsDrain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusTeapot)
	})
	s := serve(t, 10*time.Second, log.NewNopLogger(), h)
	local := s.addrs.Handler

	inFlight := httptest.NewRecorder()
	called := make(chan struct{})
	go func() {
		local.ServeHTTP(inFlight, httptest.NewRequest(http.MethodGet, "/x", nil))
		close(called)
	}()
	<-entered
	s.cancel()
	// Serve must not return while the call is under way.
	select {
	case err := <-s.done:
		t.Fatalf("Serve returned (%v) with an in-process call under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	late := httptest.NewRecorder()
	waitRefused(t, local, late)
	if late.Code != http.StatusServiceUnavailable {
		t.Errorf("call after the stop began: %d, want 503", late.Code)
	}
	close(release)
	<-called
	if err := <-s.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	s.done <- nil // for the cleanup
	if inFlight.Code != http.StatusTeapot {
		t.Errorf("in-flight call answered %d, want it to complete (418)", inFlight.Code)
	}
}

// waitRefused calls h once the stop began, when it refuses.
func waitRefused(t *testing.T, h http.Handler, rec *httptest.ResponseRecorder) {
	t.Helper()
	calls := h.(localCalls).t
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls.drain.mu.Lock()
		stopping := calls.drain.stopping
		calls.drain.mu.Unlock()
		if stopping {
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the stop did not begin")
		}
		time.Sleep(time.Millisecond)
	}
}

// slowBody is a request body that sends one chunk, then nothing until
// the test ends: an upload whose sender is slow.
func slowBody(t *testing.T) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(bytes.Repeat([]byte("x"), 1000))
	}()
	t.Cleanup(func() { _ = pw.Close() })
	return pr
}

// uploadHandler reads its body to the end like an upload; when the read
// fails it answers the error, 503 for a cut, in the wire shape. It reports
// the cause of its context and when it returned.
type uploadHandler struct {
	entered  chan struct{}
	cause    atomic.Value // error
	returned atomic.Int64 // unix nanos
}

func newUploadHandler() *uploadHandler { return &uploadHandler{entered: make(chan struct{}, 2)} }

func (h *uploadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() { h.returned.Store(time.Now().UnixNano()) }()
	h.entered <- struct{}{}
	_, err := io.Copy(io.Discard, r.Body)
	if cause := context.Cause(r.Context()); cause != nil {
		h.cause.Store(cause)
	}
	if err != nil {
		transport.WriteError(log.NewNopLogger(), w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// errorOf decodes a wire error.
func errorOf(t *testing.T, resp *http.Response) (code, reason string) {
	t.Helper()
	var eb struct {
		Error struct{ Code, Reason string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Errorf("error body: %v", err)
	}
	return eb.Error.Code, eb.Error.Reason
}

// TestStopCutsUploadsAtTheDeadline starts two slow uploads, one through
// the listener and one through the in-process handler (called from another
// server, as the proxy does), stops the service, and checks that at the
// end of the drain both are cut: their handlers' reads fail at once, their
// contexts carry the 503, the clients get 503 unavailable, and Serve
// returns only after both handlers did, within the drain and a grace.
func TestStopCutsUploadsAtTheDeadline(t *testing.T) {
	const drain = 300 * time.Millisecond
	h := newUploadHandler()
	s := serve(t, drain, log.NewNopLogger(), h)
	front := httptest.NewServer(s.addrs.Handler) // the proxy's side of a colocated call
	defer front.Close()

	type answer struct {
		resp *http.Response
		err  error
	}
	answers := make(chan answer, 2)
	for _, url := range []string{"http://" + s.addrs.HTTP + "/upload", front.URL + "/upload"} {
		req, err := http.NewRequest(http.MethodPut, url, slowBody(t))
		if err != nil {
			t.Fatal(err)
		}
		// A declared length, as an upload has, longer than what is sent.
		req.ContentLength = 64 << 20
		go func() {
			resp, err := http.DefaultClient.Do(req)
			answers <- answer{resp, err}
		}()
	}
	<-h.entered
	<-h.entered

	begin := time.Now()
	s.cancel()
	for range 2 {
		a := <-answers
		if a.err != nil {
			t.Errorf("upload: %v, want a 503 answer", a.err)
			continue
		}
		code, reason := errorOf(t, a.resp)
		a.resp.Body.Close()
		if a.resp.StatusCode != http.StatusServiceUnavailable || code != "unavailable" || reason != "unavailable" {
			t.Errorf("upload answered %d %s %s, want 503 unavailable", a.resp.StatusCode, code, reason)
		}
		t.Logf("answered %s after the stop", time.Since(begin))
		if took := time.Since(begin); took < drain || took > drain+cutGrace {
			t.Errorf("answered %s after the stop, want at the end of the %s drain", took, drain)
		}
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.done <- nil
	case <-time.After(drain + cutGrace + forceGrace):
		t.Fatal("Serve did not return within the drain and its graces")
	}
	t.Logf("Serve returned %s after the stop", time.Since(begin))
	returned := time.Unix(0, h.returned.Load())
	// The listener's drain ends once the cut connections closed, which
	// net/http delays by half a second so the client reads the answer.
	if took := time.Since(begin); returned.IsZero() || time.Now().Before(returned) || took > drain+cutGrace+500*time.Millisecond {
		t.Errorf("Serve returned %s after the stop, handlers at %v; want it after them, within %s", took, returned, drain+cutGrace)
	}
	if cause, _ := h.cause.Load().(error); !errors.Is(cause, apierr.ErrUnavailable) {
		t.Errorf("handler context's cause = %v, want unavailable", cause)
	}
}

// TestStopIsBounded checks that a handler that heeds nothing, neither its
// context nor its connection, holds a stop no longer than the drain and
// both graces, and that the stop says so.
func TestStopIsBounded(t *testing.T) {
	const drain = 100 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := log.NewLogfmtLogger(log.NewSyncWriter(writerFunc(func(p []byte) {
		mu.Lock()
		defer mu.Unlock()
		logged.Write(p)
	})))
	s := serve(t, drain, logger, h)
	go func() {
		resp, err := http.Get("http://" + s.addrs.HTTP + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	begin := time.Now()
	s.cancel()
	select {
	case <-s.done:
		s.done <- nil
	case <-time.After(drain + cutGrace + forceGrace + 2*time.Second):
		t.Fatal("Serve did not return")
	}
	if took := time.Since(begin); took > drain+cutGrace+forceGrace+500*time.Millisecond {
		t.Errorf("stop took %s, want at most the drain and both graces", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "requests still running after the drain") {
		t.Errorf("the stop did not log the request it left running: %s", logged.String())
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
