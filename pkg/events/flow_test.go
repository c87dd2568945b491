package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPublishConsumeInOrder: what one publisher sends arrives whole and
// in order, and only the types a consumer asked for.
func TestPublishConsumeInOrder(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, reg, PublisherOptions{})
	runPublisher(t, pub)
	rec := newRecorder()
	runConsumer(t, newConsumer(t, nc, reg, ConsumerOptions{Name: "activity", Types: []string{"file.*"}, Handler: rec.handle}))

	var want []Event
	for i := range 50 {
		ev := event(t, "file.written", fmt.Sprintf("/f%d", i), map[string]int{"n": i})
		if err := pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev)
		if err := pub.Publish(context.Background(), event(t, "user.login", "alice", nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "50 file events consumed", func() bool { return rec.count() >= 50 })
	got := rec.events()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d (only file.*)", len(got), len(want))
	}
	for i := range want {
		w, _ := json.Marshal(want[i])
		g, _ := json.Marshal(got[i])
		if string(w) != string(g) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
	waitFor(t, 5*time.Second, "published counted", func() bool { return metric(t, reg, "ocis_events_published_total") == 100 })
	lint(t, reg)
}

// TestConsumerCatchesUp: a consumer stopped and started again under the
// same name gets what was published meanwhile, and nothing twice.
func TestConsumerCatchesUp(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	pub := newPublisher(t, nc, nil, PublisherOptions{})
	runPublisher(t, pub)
	publish := func(n int) {
		for i := range n {
			if err := pub.Publish(context.Background(), event(t, "user.created", fmt.Sprintf("u%d", i), nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec := newRecorder()
	stop := runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "activity", Handler: rec.handle}))
	publish(5)
	waitFor(t, 10*time.Second, "first 5 consumed", func() bool { return rec.count() == 5 })
	stop()

	publish(7)
	waitFor(t, 10*time.Second, "events sent while the consumer is stopped", func() bool { return pub.Pending() == 0 })
	// Another connection, as a service started on another node would
	// have.
	nc2 := connect(t, s, "test2")
	c2 := newConsumer(t, nc2, nil, ConsumerOptions{Name: "activity", Handler: rec.handle})
	runConsumer(t, c2)
	waitFor(t, 10*time.Second, "12 consumed after the restart", func() bool { return rec.count() == 12 })
	for _, ev := range rec.events() {
		if n := rec.deliveriesOf(ev.ID); n != 1 {
			t.Errorf("event %s delivered %d times, want 1", ev.Subject, n)
		}
	}
	// A consumer of another name starts from the beginning of the stream.
	other := newRecorder()
	runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "audit", Handler: other.handle}))
	waitFor(t, 10*time.Second, "a new consumer gets the history", func() bool { return other.count() == 12 })
}

// TestRedeliveryAfterHandlerError: a failing handler gets the event again
// after the retry delay; the idempotent store applies it once.
func TestRedeliveryAfterHandlerError(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, reg, PublisherOptions{})
	runPublisher(t, pub)
	rec := newRecorder()
	attempts := make(chan int, 10)
	rec.fail = func(ev Event, attempt int) error {
		if ev.Subject != "flaky" {
			return nil
		}
		attempts <- attempt
		if attempt == 1 {
			return errors.New("store busy")
		}
		return nil
	}
	var gotDelivery Delivery
	handler := func(ctx context.Context, ev Event) error {
		if ev.Subject == "flaky" {
			gotDelivery, _ = DeliveryFrom(ctx)
		}
		return rec.handle(ctx, ev)
	}
	runConsumer(t, newConsumer(t, nc, reg, ConsumerOptions{Name: "activity", Handler: handler}))
	for _, subject := range []string{"a", "flaky", "b"} {
		if err := pub.Publish(context.Background(), event(t, "file.written", subject, nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "all three applied", func() bool { return rec.count() == 3 })
	if got := []int{<-attempts, <-attempts}; got[0] != 1 || got[1] != 2 {
		t.Fatalf("attempts %v, want [1 2]", got)
	}
	if gotDelivery.Attempt != 2 || gotDelivery.StreamSeq != 2 {
		t.Errorf("delivery %+v, want attempt 2 of stream sequence 2", gotDelivery)
	}
	if got := metric(t, reg, "ocis_events_handled_total", "result", "retry"); got != 1 {
		t.Errorf("retries counted %v, want 1", got)
	}
}

// TestRedeliveryAfterCrashBeforeAck: a consumer that dies after applying
// an event but before acknowledging it gets it again on restart, after
// AckWait; the idempotent store makes no duplicate.
func TestRedeliveryAfterCrashBeforeAck(t *testing.T) {
	s := startServer(t)
	pubConn := connect(t, s, "publisher")
	pub := newPublisher(t, pubConn, nil, PublisherOptions{})
	runPublisher(t, pub)
	rec := newRecorder()
	const ackWait = 500 * time.Millisecond

	// The first consumer applies the event, then hangs until its
	// connection is gone: it never answers.
	applied := make(chan struct{})
	release := make(chan struct{})
	crashing := func(ctx context.Context, ev Event) error {
		if err := rec.handle(ctx, ev); err != nil {
			return err
		}
		close(applied)
		<-release
		return errors.New("crashed")
	}
	nc1 := connect(t, s, "consumer-1")
	stop1 := runConsumer(t, newConsumer(t, nc1, nil, ConsumerOptions{Name: "activity", AckWait: ackWait, Handler: crashing}))
	ev := event(t, "file.written", "/a", nil)
	if err := pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("the event never reached the first consumer")
	}
	nc1.Close() // the crash: nothing more reaches the server from it
	close(release)
	stop1()

	nc2 := connect(t, s, "consumer-2")
	runConsumer(t, newConsumer(t, nc2, nil, ConsumerOptions{Name: "activity", AckWait: ackWait, Handler: rec.handle}))
	waitFor(t, 10*time.Second, "the event delivered again", func() bool { return rec.deliveriesOf(ev.ID) == 2 })
	if n := rec.count(); n != 1 {
		t.Fatalf("applied %d times, want 1", n)
	}
}

// TestDeadLetters: an event whose handler keeps failing is given up after
// MaxDeliver deliveries, one failing permanently at once, one never
// answered after MaxDeliver deliveries too; each is counted, and the
// events after them are handled.
func TestDeadLetters(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, reg, PublisherOptions{})
	runPublisher(t, pub)
	rec := newRecorder()
	rec.fail = func(ev Event, attempt int) error {
		switch ev.Subject {
		case "always-fails":
			return errors.New("store broken")
		case "poison":
			return Permanent(errors.New("payload does not decode"))
		}
		return nil
	}
	const maxDeliver = 3
	c := newConsumer(t, nc, reg, ConsumerOptions{Name: "activity", MaxDeliver: maxDeliver, AckWait: 200 * time.Millisecond, Handler: rec.handle})

	// The durable consumer exists before the events, and a client that
	// is not ours takes the first event twice without ever answering.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.stream.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := c.bind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unanswered := event(t, "file.written", "unanswered", nil)
	if err := pub.Publish(ctx, unanswered); err != nil {
		t.Fatal(err)
	}
	for i := range maxDeliver {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		msg, ok := <-batch.Messages()
		if !ok {
			t.Fatalf("delivery %d of the unanswered event did not come: %v", i+1, batch.Error())
		}
		_ = msg // never acknowledged
	}

	runConsumer(t, c)
	for _, subject := range []string{"always-fails", "poison", "fine"} {
		if err := pub.Publish(ctx, event(t, "file.written", subject, nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "three dead letters counted", func() bool {
		return metric(t, reg, "ocis_events_dead_letters_total", "reason", "max_deliver") == 1 &&
			metric(t, reg, "ocis_events_dead_letters_total", "reason", "permanent") == 1 &&
			metric(t, reg, "ocis_events_dead_letters_total", "reason", "unacked") == 1
	})
	waitFor(t, 5*time.Second, "the good event handled", func() bool { return rec.count() == 1 })
	if got := rec.events()[0].Subject; got != "fine" {
		t.Fatalf("applied %q, want only fine", got)
	}
	if rec.deliveriesOf(unanswered.ID) != 0 {
		t.Error("the handler got the event that ran out of deliveries elsewhere")
	}
	for subject, want := range map[string]int{"always-fails": maxDeliver, "poison": 1} {
		ids := rec.idsOf(subject)
		if len(ids) != 1 {
			t.Errorf("%s: %d events delivered, want 1", subject, len(ids))
		}
		for _, id := range ids {
			if got := rec.deliveriesOf(id); got != want {
				t.Errorf("%s delivered %d times, want %d", subject, got, want)
			}
		}
	}
	lint(t, reg)
}

// TestTraceHeadersRoundTrip: the trace context of the publishing request
// reaches the handler's context, through the default propagator and
// through a custom one.
func TestTraceHeadersRoundTrip(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	pub := newPublisher(t, nc, nil, PublisherOptions{})
	runPublisher(t, pub)
	got := make(chan TraceContext, 2)
	runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "activity", Handler: func(ctx context.Context, ev Event) error {
		tc, _ := TraceContextFrom(ctx)
		got <- tc
		return nil
	}}))
	want := TraceContext{Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Tracestate: "congo=t61rcWkgMzE"}
	if err := pub.Publish(WithTraceContext(context.Background(), want), event(t, "user.login", "alice", nil)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), event(t, "user.login", "bob", nil)); err != nil {
		t.Fatal(err)
	}
	for i, w := range []TraceContext{want, {}} {
		select {
		case tc := <-got:
			if tc != w {
				t.Errorf("event %d: trace context %+v, want %+v", i, tc, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("event not consumed")
		}
	}

	// A custom propagator (what an OpenTelemetry adapter is) sees the
	// headers on both sides.
	prop := &recordingPropagator{}
	pub2 := newPublisher(t, nc, nil, PublisherOptions{Propagator: prop})
	runPublisher(t, pub2)
	seen := make(chan string, 1)
	runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "other", Types: []string{"span.test"}, Propagator: prop, Handler: func(ctx context.Context, ev Event) error {
		v, _ := ctx.Value(propKey{}).(string)
		seen <- v
		return nil
	}}))
	if err := pub2.Publish(context.WithValue(context.Background(), propKey{}, "span-1"), event(t, "span.test", "x", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-seen:
		if v != "span-1" {
			t.Fatalf("handler context carries %q, want span-1", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event not consumed")
	}
}

type propKey struct{}

// recordingPropagator carries one context value in an "x-span" header.
type recordingPropagator struct{}

func (*recordingPropagator) Inject(ctx context.Context, c Carrier) {
	if v, ok := ctx.Value(propKey{}).(string); ok {
		c.Set("x-span", v)
	}
}

func (*recordingPropagator) Extract(ctx context.Context, c Carrier) context.Context {
	if v := c.Get("x-span"); v != "" {
		return context.WithValue(ctx, propKey{}, v)
	}
	return ctx
}

// TestLag: the consumer's lag is what it has not handled, through the
// method, the gauge and ConsumerLag.
func TestLag(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, nc, nil, PublisherOptions{})
	runPublisher(t, pub)
	release := make(chan struct{})
	rec := newRecorder()
	c := newConsumer(t, nc, reg, ConsumerOptions{Name: "activity", Handler: func(ctx context.Context, ev Event) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return rec.handle(ctx, ev)
	}})
	runConsumer(t, c)
	for i := range 10 {
		if err := pub.Publish(context.Background(), event(t, "file.written", fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	waitFor(t, 10*time.Second, "lag of 10", func() bool {
		lag, err := c.Lag(ctx)
		return err == nil && lag.Total() == 10
	})
	if got := metric(t, reg, "ocis_events_consumer_pending", "consumer", "activity"); got != 10 {
		t.Errorf("pending gauge %v, want 10", got)
	}
	lag, err := ConsumerLag(ctx, nc, "", "activity")
	if err != nil || lag.Total() != 10 {
		t.Errorf("ConsumerLag = %+v, %v; want a total of 10", lag, err)
	}
	close(release)
	waitFor(t, 10*time.Second, "all handled", func() bool { return rec.count() == 10 })
	waitFor(t, 10*time.Second, "the gauge back to 0", func() bool {
		return metric(t, reg, "ocis_events_consumer_pending", "consumer", "activity") == 0
	})
	if _, err := ConsumerLag(ctx, nc, "", "nobody"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("ConsumerLag of an unknown consumer: %v, want ErrConsumerNotFound", err)
	}
}

// TestStopHandsBack: a consumer stopped with events fetched but not
// handled hands them back, so the next consumer of the name gets them at
// once instead of after AckWait (30 s here).
func TestStopHandsBack(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s, "test")
	pub := newPublisher(t, nc, nil, PublisherOptions{})
	runPublisher(t, pub)
	busy := make(chan struct{}, 1)
	stuck := func(ctx context.Context, ev Event) error {
		select {
		case busy <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	stop := runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "activity", AckWait: 30 * time.Second, Handler: stuck}))
	for i := range 5 {
		if err := pub.Publish(context.Background(), event(t, "file.written", fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	<-busy
	waitFor(t, 10*time.Second, "all five sent", func() bool { return pub.Pending() == 0 })
	stop()

	rec := newRecorder()
	runConsumer(t, newConsumer(t, nc, nil, ConsumerOptions{Name: "activity", AckWait: 30 * time.Second, Handler: rec.handle}))
	waitFor(t, 10*time.Second, "the five handed back and handled", func() bool { return rec.count() == 5 })
}
