package service_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// recorder is an actor that says when its Execute began and was
// interrupted.
type recorder struct {
	began       chan struct{}
	interrupted chan struct{}
	once        sync.Once
}

func newRecorder() *recorder {
	return &recorder{began: make(chan struct{}), interrupted: make(chan struct{})}
}

func (r *recorder) actor() service.Actor {
	return service.Actor{
		Execute: func() error {
			close(r.began)
			<-r.interrupted
			return nil
		},
		// May come more than once, as the actors of oklog/run must allow.
		Interrupt: func(error) { r.once.Do(func() { close(r.interrupted) }) },
	}
}

// TestAfterStart checks that the wrapped Execute begins only once the
// start has ended, at once without a start to wait for, and even when the
// interrupt came first (a publisher must still drain). synctest.Wait
// returns once every goroutine of the test is blocked, so "not begun yet"
// is a fact, not a guess after a sleep.
func TestAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		alone     bool // no start to wait for
		interrupt bool // before the start ends
	}{
		{name: "waits for the start"},
		{name: "interrupted during the start", interrupt: true},
		{name: "run alone", alone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var started chan struct{}
				if !tc.alone {
					started = make(chan struct{})
				}
				r := newRecorder()
				a := service.AfterStart(started, r.actor())
				done := make(chan error, 1)
				go func() { done <- a.Execute() }()
				synctest.Wait()
				select {
				case <-r.began:
					if !tc.alone {
						t.Fatal("Execute began before the start ended")
					}
				default:
					if tc.alone {
						t.Fatal("Execute waits though there is no start to wait for")
					}
				}
				switch {
				case tc.interrupt:
					a.Interrupt(nil)
				case !tc.alone:
					close(started)
				}
				<-r.began
				a.Interrupt(nil)
				if err := <-done; err != nil {
					t.Fatalf("Execute = %v", err)
				}
				// A second interrupt, as oklog/run may give, must not panic.
				a.Interrupt(errors.New("again"))
			})
		})
	}
}

// startNATS runs an embedded NATS server with JetStream for one test and
// returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "service-test", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return "nats://" + srv.Addr().(*net.TCPAddr).String()
}

// streamMsgs returns how many messages the events stream holds, and
// whether it exists.
func streamMsgs(t *testing.T, js jetstream.JetStream) (uint64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, true
}

// TestEventsPublishedDuringTheStartAreSent checks that a service's
// publisher binds no stream before the family has started, keeps what is
// published meanwhile, and sends it after: once the start ends, or on a
// stop that comes first.
func TestEventsPublishedDuringTheStartAreSent(t *testing.T) {
	url := startNATS(t)
	for _, tc := range []struct {
		name     string
		stopNext bool // the stop comes before the start ends
	}{
		{name: "start ends"},
		{name: "stopped during the start", stopNext: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteStream(context.Background(), events.StreamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatal(err)
			}

			started := make(chan struct{})
			logger := log.NewNopLogger()
			d := service.Descriptor{Name: "storage", HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0"}
			b := service.NewBase(d, true)
			env := service.Env{Logger: logger, Node: "n1", NATSClient: &natsconn.Options{URLs: []string{url}}, Started: started}
			pub, actors, closeNATS, err := service.Events(env, "storage", true, logger, prometheus.NewRegistry(), &b)
			if err != nil {
				t.Fatal(err)
			}
			defer closeNATS()
			if len(actors) != 1 {
				t.Fatalf("%d actors, want 1", len(actors))
			}
			done := make(chan error, 1)
			go func() { done <- actors[0].Execute() }()

			ev, err := events.New("file.written", "alice-id", "a.txt", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if n := pub.(*events.Publisher).Pending(); n != 1 {
				t.Fatalf("%d events pending during the start, want 1", n)
			}
			if _, ok := streamMsgs(t, js); ok {
				t.Fatal("the events stream was made during the start")
			}

			if tc.stopNext {
				actors[0].Interrupt(nil)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if n, _ := streamMsgs(t, js); n != 1 {
					t.Fatalf("stream holds %d events after the stop, want 1", n)
				}
				return
			}
			close(started)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if n, _ := streamMsgs(t, js); n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the event published during the start was not sent after it")
				}
				time.Sleep(10 * time.Millisecond)
			}
			actors[0].Interrupt(nil)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
