package activity

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// startNATS runs an embedded NATS server with JetStream for one test and
// returns a client connection to it.
func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "activity-test", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
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
	nc, err := natsconn.Connect(natsconn.Options{
		URLs: []string{"nats://" + srv.Addr().(*net.TCPAddr).String()}, Name: t.Name(),
		ReconnectWait: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// runConsumer runs the activity consumer on nc with handler until the
// returned stop is called; stop waits for it to return.
func runConsumer(t *testing.T, nc *nats.Conn, handler events.Handler) (stop func()) {
	t.Helper()
	cons, err := events.NewConsumer(nc, events.ConsumerOptions{
		Name: ConsumerName("n1"), Types: Types, Handler: handler,
		RetryDelays: []time.Duration{10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("consumer did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, nc *nats.Conn, evs ...events.Event) {
	t.Helper()
	pub, err := events.NewPublisher(nc, events.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	for _, ev := range evs {
		if err := pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Stopping drains the outbox: every event is stored when Run returns.
	cancel()
	<-done
	if pub.Pending() != 0 {
		t.Fatal("events left unpublished")
	}
}

func waitLog(t *testing.T, st *store, user string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := subjects(t, st, user)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s = %q, want %q", user, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A consumer that applied an event and stopped before its ack (the
// service killed mid-delivery) gets it again from the next instance of
// its name, and the log holds it once.
func TestRedeliveryMakesNoDuplicate(t *testing.T) {
	nc := startNATS(t)
	st := openTestStore(t)
	first := event(t, "file.written", "alice-id", "a.txt", 1, nil)
	second := event(t, "file.written", "alice-id", "b.txt", 2, nil)

	// The first instance applies the first event, then is stopped while
	// its handler still holds the delivery: no ack is ever sent for it.
	var applied atomic.Int32
	var stop func()
	stopping := make(chan struct{})
	stop = runConsumer(t, nc, func(ctx context.Context, ev events.Event) error {
		if err := st.apply(ctx, ev); err != nil {
			return err
		}
		applied.Add(1)
		close(stopping)
		<-ctx.Done()
		return ctx.Err()
	})
	publish(t, nc, first)
	select {
	case <-stopping:
	case <-time.After(10 * time.Second):
		t.Fatal("the first event was never delivered")
	}
	stop()
	if got := subjects(t, st, "alice-id"); !slices.Equal(got, []string{"file.written a.txt"}) {
		t.Fatalf("after the first instance: %q", got)
	}

	// The next instance gets it again, and then the second event.
	var deliveries atomic.Int32
	runConsumer(t, nc, func(ctx context.Context, ev events.Event) error {
		deliveries.Add(1)
		return st.apply(ctx, ev)
	})
	publish(t, nc, second)
	waitLog(t, st, "alice-id", []string{"file.written b.txt", "file.written a.txt"})
	if got := deliveries.Load(); got != 2 {
		t.Errorf("second instance had %d deliveries, want 2 (the redelivery and the new one)", got)
	}
	if applied.Load() != 1 {
		t.Errorf("first instance applied %d, want 1", applied.Load())
	}
}

// Events published while the consumer is stopped are there when it runs
// again; one for a deleted account arriving after the deletion is dropped.
func TestCatchUpAfterStop(t *testing.T) {
	nc := startNATS(t)
	st := openTestStore(t)
	stop := runConsumer(t, nc, st.apply)
	publish(t, nc, event(t, "user.login", "alice-id", "alice", 1, map[string]string{"username": "alice", "user_id": "alice-id"}))
	waitLog(t, st, "alice-id", []string{"user.login alice"})
	stop()

	publish(t, nc,
		event(t, "file.written", "alice-id", "a.txt", 2, nil),
		event(t, "file.written", "bob-id", "b.txt", 3, nil),
		event(t, "user.deleted", "admin-id", "bob", 4, map[string]string{"username": "bob", "user_id": "bob-id"}),
		event(t, "file.deleted", "bob-id", "b.txt", 5, nil),
	)
	runConsumer(t, nc, st.apply)
	waitLog(t, st, "admin-id", []string{"user.deleted bob"})
	waitLog(t, st, "alice-id", []string{"file.written a.txt", "user.login alice"})
	if got := subjects(t, st, "bob-id"); len(got) != 0 {
		t.Errorf("deleted account's log = %q", got)
	}
	// The last ack may still be on its way when the logs are complete.
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := events.ConsumerLag(context.Background(), nc, "", ConsumerName("n1"))
		if err == nil && lag.Total() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag after catching up = %+v, %v; want 0", lag, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
