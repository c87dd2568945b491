package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
)

// publishQuickly publishes n events about prefix-i, failing the test if
// any Publish takes more than a few milliseconds: it must never wait for
// NATS.
func publishQuickly(t *testing.T, pub *Publisher, prefix string, n int) []error {
	t.Helper()
	var errs []error
	var slowest time.Duration
	for i := range n {
		start := time.Now()
		err := pub.Publish(context.Background(), event(t, "file.written", fmt.Sprintf("%s-%d", prefix, i), nil))
		slowest = max(slowest, time.Since(start))
		errs = append(errs, err)
	}
	if slowest > 50*time.Millisecond {
		t.Errorf("the slowest Publish took %s: it must not wait for NATS", slowest)
	}
	return errs
}

// TestPublishWhileServerDown: with the server gone, Publish returns at
// once, and the events reach the consumer once the server is back (same
// port, same store).
func TestPublishWhileServerDown(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "publisher")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, reg, PublisherOptions{AttemptTimeout: time.Second})
	runPublisher(t, pub)
	rec := newRecorder()
	runConsumer(t, newConsumer(t, connect(t, s, "consumer"), nil, ConsumerOptions{Name: "activity", Handler: rec.handle}))

	publishQuickly(t, pub, "before", 1)
	waitFor(t, 10*time.Second, "the first event consumed", func() bool { return rec.count() == 1 })

	s.stop()
	waitFor(t, 10*time.Second, "the client noticed", func() bool { return !nc.IsConnected() })
	for _, err := range publishQuickly(t, pub, "down", 10) {
		if err != nil {
			t.Fatalf("Publish while NATS is down: %v", err)
		}
	}
	s.restart(t)
	waitFor(t, 20*time.Second, "the events published while down consumed", func() bool { return rec.count() == 11 })
	for _, reason := range []string{"overflow", "closed", "shutdown"} {
		if got := metric(t, reg, "ocis_events_dropped_total", "reason", reason); got != 0 {
			t.Errorf("dropped{reason=%q} = %v, want 0", reason, got)
		}
	}
	if got := metric(t, reg, "ocis_events_published_total"); got != 11 {
		t.Errorf("published %v, want 11", got)
	}
}

// TestPublisherStartsBeforeNATS: a publisher whose server is not up yet
// (no stream either) keeps its events until it is.
func TestPublisherStartsBeforeNATS(t *testing.T) {
	s := startServer(t)
	s.stop()
	nc := connect(t, s, "publisher")
	pub := newPublisher(t, nc, nil, PublisherOptions{AttemptTimeout: time.Second})
	runPublisher(t, pub)
	for _, err := range publishQuickly(t, pub, "early", 3) {
		if err != nil {
			t.Fatalf("Publish before NATS: %v", err)
		}
	}
	s.restart(t)
	rec := newRecorder()
	runConsumer(t, newConsumer(t, connect(t, s, "consumer"), nil, ConsumerOptions{Name: "activity", Handler: rec.handle}))
	waitFor(t, 20*time.Second, "the early events consumed", func() bool { return rec.count() == 3 })
}

// TestOutboxOverflow: a full outbox drops, counts and says so; a stopped
// publisher drops as well.
func TestOutboxOverflow(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "publisher")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, reg, PublisherOptions{OutboxSize: 5})

	// Not running yet: nothing leaves the outbox.
	errs := publishQuickly(t, pub, "burst", 8)
	for i, err := range errs {
		want := error(nil)
		if i >= 5 {
			want = ErrOutboxFull
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("Publish %d: %v, want %v", i, err, want)
		}
	}
	if got := metric(t, reg, "ocis_events_dropped_total", "reason", "overflow"); got != 3 {
		t.Errorf("dropped{overflow} = %v, want 3", got)
	}
	if got := metric(t, reg, "ocis_events_outbox_events"); got != 5 {
		t.Errorf("outbox gauge %v, want 5", got)
	}
	stop := runPublisher(t, pub)
	waitFor(t, 10*time.Second, "the 5 kept events sent", func() bool { return metric(t, reg, "ocis_events_published_total") == 5 })
	stop()
	if err := pub.Publish(context.Background(), event(t, "file.written", "late", nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after stop: %v, want ErrClosed", err)
	}
	if got := metric(t, reg, "ocis_events_dropped_total", "reason", "closed"); got != 1 {
		t.Errorf("dropped{closed} = %v, want 1", got)
	}
	if err := pub.Publish(context.Background(), Event{Type: "Bad Type"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Publish of a malformed event: %v, want ErrInvalid", err)
	}
	lint(t, reg)
}

// TestDrainOnStop: a publisher told to stop sends what it holds first;
// with NATS down it gives up after DrainTimeout and counts the loss.
func TestDrainOnStop(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "publisher")

	t.Run("sends what it holds", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		pub := newPublisher(t, nc, reg, PublisherOptions{})
		publishQuickly(t, pub, "held", 20)
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stopped before it sent anything
		if err := pub.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if got := metric(t, reg, "ocis_events_published_total"); got != 20 {
			t.Errorf("published %v, want 20", got)
		}
	})

	t.Run("gives up when NATS is down", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		const drain = 300 * time.Millisecond
		pub := newPublisher(t, nc, reg, PublisherOptions{DrainTimeout: drain})
		s.stop()
		waitFor(t, 10*time.Second, "the client noticed", func() bool { return !nc.IsConnected() })
		publishQuickly(t, pub, "doomed", 3)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		if err := pub.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > drain+2*time.Second {
			t.Errorf("Run took %s to stop, drain timeout %s", took, drain)
		}
		if got := metric(t, reg, "ocis_events_dropped_total", "reason", "shutdown"); got != 3 {
			t.Errorf("dropped{shutdown} = %v, want 3", got)
		}
	})
}

// TestActors: Publisher and Consumer as oklog/run actors, the way a
// service's run group holds them.
func TestActors(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	pub := newPublisher(t, nc, nil, PublisherOptions{})
	rec := newRecorder()
	cons := newConsumer(t, nc, nil, ConsumerOptions{Name: "activity", Handler: rec.handle})

	var g run.Group
	g.Add(pub.Execute, pub.Interrupt)
	g.Add(cons.Execute, cons.Interrupt)
	done := make(chan struct{})
	g.Add(func() error {
		for i := range 3 {
			_ = pub.Publish(context.Background(), event(t, "user.created", fmt.Sprint(i), nil))
		}
		deadline := time.After(10 * time.Second)
		for rec.count() < 3 {
			select {
			case <-deadline:
				return errors.New("events not consumed")
			case <-done:
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}, func(error) { close(done) })
	finished := make(chan error, 1)
	go func() { finished <- g.Run() }()
	select {
	case err := <-finished:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the group did not end")
	}
	// Interrupt after the end, and Execute after Interrupt, return at once.
	pub.Interrupt(nil)
	cons.Interrupt(nil)
	if err := cons.Execute(); err != nil {
		t.Fatal(err)
	}
}
