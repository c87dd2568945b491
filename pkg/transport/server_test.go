package transport_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/run"

	"github.com/ocis-runtime/ocis/pkg/transport"
)

// waitFor fails the test when ch does not close or send within a generous
// bound; it guards against hangs and never paces the test.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds or a generous bound passes.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// blockingHandler answers once release is closed and tells entered when a
// request has arrived.
func blockingHandler(entered chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})
}

type result struct {
	status int
	body   string
	err    error
}

func get(client *http.Client, url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		ch <- result{status: resp.StatusCode, body: string(body), err: err}
	}()
	return ch
}

// runGroup runs g with s and a stop actor, and returns the stop function and
// the group's result.
func runGroup(s *transport.Server) (stop func(), done <-chan error) {
	var g run.Group
	s.AddTo(&g)
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) { cancel() })
	errc := make(chan error, 1)
	go func() { errc <- g.Run() }()
	return cancel, errc
}

func refusesConnections(addr string) func() bool {
	return func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		_ = conn.Close()
		return false
	}
}

func TestServerGracefulShutdown(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", blockingHandler(entered, release), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runGroup(s)

	answer := get(&http.Client{}, "http://"+s.Addr()+"/")
	waitFor(t, entered, "the request to reach the handler")

	stop()
	// The listener closes first: new callers are turned away while the
	// accepted request is still being served.
	eventually(t, refusesConnections(s.Addr()), "the listener to close")
	select {
	case err := <-done:
		t.Fatalf("group returned %v while a request was in flight", err)
	default:
	}

	close(release)
	got := waitFor(t, answer, "the in-flight answer")
	if got.err != nil || got.status != http.StatusOK || got.body != "done" {
		t.Errorf("in-flight request got (%d, %q, %v), want (200, \"done\", nil)", got.status, got.body, got.err)
	}
	if err := waitFor(t, done, "the group to return"); err != nil {
		t.Errorf("group returned %v, want nil", err)
	}
}

func TestServerDrainIsBounded(t *testing.T) {
	// A request that outlives the drain is cut off, so one stuck handler
	// cannot hold the group (and every other server in it) forever.
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", blockingHandler(entered, release), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runGroup(s)

	answer := get(&http.Client{}, "http://"+s.Addr()+"/")
	waitFor(t, entered, "the request to reach the handler")
	stop()

	if err := waitFor(t, done, "the group to return"); err != nil {
		t.Errorf("group returned %v, want nil", err)
	}
	if got := waitFor(t, answer, "the cut-off answer"); got.err == nil {
		t.Errorf("request outliving the drain got (%d, %q), want a broken connection", got.status, got.body)
	}
}

func TestServerInterruptBeforeServe(t *testing.T) {
	// oklog/run may interrupt an actor that has not started serving yet,
	// when another actor returns at once.
	s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", http.NotFoundHandler(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var g run.Group
	g.Add(func() error { return nil }, func(error) {})
	s.AddTo(&g)
	errc := make(chan error, 1)
	go func() { errc <- g.Run() }()
	if err := waitFor(t, errc, "the group to return"); err != nil {
		t.Errorf("group returned %v, want nil", err)
	}
	if !refusesConnections(s.Addr())() {
		t.Error("listener still accepts after the group returned")
	}
}

func TestListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })

	for _, tc := range []struct {
		name    string
		addr    string
		wantErr string
	}{
		{name: "free port", addr: "127.0.0.1:0"},
		{name: "taken port", addr: taken.Addr().String(), wantErr: "listen on " + taken.Addr().String()},
		{name: "bad address", addr: "127.0.0.1:notaport", wantErr: "listen on 127.0.0.1:notaport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := transport.Listen(log.NewNopLogger(), tc.addr, http.NotFoundHandler(), time.Second)
			if tc.wantErr != "" {
				if err == nil {
					_ = s.Close()
					t.Fatalf("Listen(%q) succeeded, want an error", tc.addr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen(%q) = %v", tc.addr, err)
			}
			if strings.HasSuffix(s.Addr(), ":0") {
				t.Errorf("Addr() = %q, want the real port", s.Addr())
			}
			// A server that never ran gives its port back.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if !refusesConnections(s.Addr())() {
				t.Error("port still accepts after Close")
			}
		})
	}
}
