package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of ConsumerOptions.
const (
	DefaultMaxDeliver  = 10
	DefaultAckWait     = 30 * time.Second
	DefaultLagInterval = 5 * time.Second
	// pullBatch is how many events the client holds ahead of the
	// handler. Their ack timers run while they wait, so pullBatch times a
	// handler's duration must stay well below AckWait.
	pullBatch = 64
	// pullExpiry bounds one pull request; idle heartbeats come at half
	// of it, so a consumer lost on the server is noticed within it.
	pullExpiry = 10 * time.Second
	// handBackTimeout bounds each step of a consumer's stop.
	handBackTimeout = 2 * time.Second
	// advisoryPrefix is where JetStream says that a message ran out of
	// deliveries without an answer.
	advisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
)

// DefaultRetryDelays are the waits before redelivering an event whose
// handler failed, by attempt: 1 s after the first failure, then 5 s,
// 30 s, 1 min, and 5 min after every later one. With DefaultMaxDeliver
// an event is tried for about half an hour before it is given up.
var DefaultRetryDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute}

// Handler handles one event. It must be idempotent: the same event (same
// ID) may come again after a crash before the ack or a publisher's retry.
// A nil error acknowledges the event; an error has it redelivered after a
// delay, until MaxDeliver; an error wrapped by Permanent gives it up at
// once. ctx ends when the consumer stops; it carries the event's trace
// context and its Delivery.
type Handler func(ctx context.Context, ev Event) error

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Name is the durable consumer's name: the consuming service's name
	// ([A-Za-z0-9_-]). The stream remembers per name what was
	// acknowledged, so a consumer restarted, or started on another node,
	// continues where the name stopped. Instances that share a name share
	// the work (each event goes to one of them): give each independent
	// store its own name.
	Name string
	// Types are the event types to receive; "*" matches one word, ">"
	// at the end any rest ("file.*", "user.>"). Empty means every event.
	// They may change between starts; they must not overlap.
	Types []string
	// Handler is called for every event, one at a time.
	Handler Handler
	// Stream is the stream to consume, created when missing.
	Stream StreamConfig
	// MaxDeliver is how many times an event is delivered at most; then it
	// is a dead letter. Default DefaultMaxDeliver.
	MaxDeliver int
	// AckWait is how long a delivery may go unanswered before the
	// server delivers it again: a consumer that died mid-event. A running
	// handler keeps its event from timing out. Default DefaultAckWait.
	AckWait time.Duration
	// RetryDelays are the waits before redelivering after a handler
	// error, by attempt; the last repeats. Default DefaultRetryDelays.
	RetryDelays []time.Duration
	// DeliverNew makes a consumer created now start with the events
	// published from now on, instead of everything the stream still
	// holds (up to StreamConfig.MaxAge). It matters only on the first
	// start of a name.
	DeliverNew bool
	// LagInterval is how often the lag gauge is refreshed. Default
	// DefaultLagInterval.
	LagInterval time.Duration
	// Propagator extracts the trace context from the event's headers
	// into the handler's context. Default W3CPropagator.
	Propagator Propagator
	// Logger defaults to no logging.
	Logger log.Logger
	// Registerer gets the consumer's metrics, labelled
	// consumer="<Name>"; nil registers nothing.
	Registerer prometheus.Registerer
}

// Consumer delivers the stream's events to a handler through a durable
// JetStream consumer. Run it as an actor (Run, or Execute and Interrupt);
// make one per service start.
type Consumer struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   *stream
	opts     ConsumerOptions
	subjects []string
	logger   log.Logger
	m        consumerMetrics

	stop     chan struct{}
	stopOnce sync.Once
}

// NewConsumer checks opts and returns a consumer on nc. It does not touch
// the network: Run finds or creates the stream and the durable consumer,
// retrying while NATS or JetStream is unreachable.
func NewConsumer(nc *nats.Conn, opts ConsumerOptions) (*Consumer, error) {
	if nc == nil {
		return nil, errors.New("events consumer: no NATS connection")
	}
	if err := validateName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Handler == nil {
		return nil, fmt.Errorf("events consumer %s: no handler", opts.Name)
	}
	subjects, err := filterSubjects(opts.Types)
	if err != nil {
		return nil, fmt.Errorf("events consumer %s: %w", opts.Name, err)
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = DefaultMaxDeliver
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if len(opts.RetryDelays) == 0 {
		opts.RetryDelays = DefaultRetryDelays
	}
	if opts.LagInterval <= 0 {
		opts.LagInterval = DefaultLagInterval
	}
	if opts.Propagator == nil {
		opts.Propagator = W3CPropagator{}
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("events consumer %s: %w", opts.Name, err)
	}
	logger := log.With(opts.Logger, "consumer", opts.Name)
	return &Consumer{
		nc:       nc,
		js:       js,
		stream:   newStream(js, opts.Stream, logger),
		opts:     opts,
		subjects: subjects,
		logger:   logger,
		m:        newConsumerMetrics(opts.Registerer, opts.Name),
		stop:     make(chan struct{}),
	}, nil
}

// validateName accepts what JetStream accepts as a durable name and a
// node or service name is made of.
func validateName(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return fmt.Errorf("%w: consumer name %q: want 1 to 64 of A-Z, a-z, 0-9, _ and -", ErrInvalid, name)
	}
	return nil
}

// filterSubjects turns event type filters into subjects, refusing
// malformed and overlapping ones (JetStream refuses overlaps too, but
// only once the consumer is created, too late to say so at start).
func filterSubjects(types []string) ([]string, error) {
	if len(types) == 0 {
		return []string{SubjectPrefix + ">"}, nil
	}
	for i, t := range types {
		if err := validType(t, true); err != nil {
			return nil, err
		}
		for _, u := range types[:i] {
			if overlap(t, u) {
				return nil, fmt.Errorf("%w: filters %q and %q overlap", ErrInvalid, u, t)
			}
		}
	}
	subjects := make([]string, len(types))
	for i, t := range types {
		subjects[i] = Subject(t)
	}
	return subjects, nil
}

// overlap reports whether some type matches both filters.
func overlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		switch {
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] == "*" || bt[i] == "*" || at[i] == bt[i]:
		default:
			return false
		}
	}
	return len(at) == len(bt)
}

// Execute runs the consumer until Interrupt: the oklog/run actor's first
// half. Execute runs once per Consumer.
func (c *Consumer) Execute() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return c.Run(ctx)
}

// Interrupt makes Execute return once the handler call under way, if
// any, has returned; that call's context is cancelled. It never blocks
// and may be called more than once.
func (c *Consumer) Interrupt(error) {
	c.stopOnce.Do(func() { close(c.stop) })
}

// Run delivers events to the handler until ctx ends, and returns nil
// then. It binds the stream and the durable consumer first, retrying
// while JetStream does not answer, and binds them again whenever the
// delivery breaks (the consumer lost with a server). It returns an error
// only when the NATS connection was closed under it.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	unsubscribe, err := c.watchDeadLetters()
	if err != nil {
		return fmt.Errorf("events consumer %s: %w", c.opts.Name, err)
	}
	defer unsubscribe()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.trackLag(ctx)
	}()

	backoff := retry{min: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		err := c.consume(ctx, &backoff)
		if ctx.Err() != nil {
			return nil
		}
		if c.nc.IsClosed() {
			return fmt.Errorf("events consumer %s: NATS connection closed: %w", c.opts.Name, err)
		}
		if backoff.n == 0 {
			level.Warn(c.logger).Log("msg", "events delivery interrupted, binding the consumer again", "err", err)
		} else {
			level.Debug(c.logger).Log("msg", "events delivery interrupted, binding the consumer again", "err", err)
		}
		if backoff.wait(ctx) != nil {
			return nil
		}
	}
}

// consume binds the durable consumer and hands its events to the handler
// until the delivery breaks or ctx ends.
func (c *Consumer) consume(ctx context.Context, backoff *retry) error {
	if err := c.stream.ensure(ctx); err != nil {
		return err
	}
	cons, err := c.bind(ctx)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return err
	}
	defer c.handBack(it)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			// Next may pick a buffered event over the cancellation.
			_ = msg.Nak()
			return ctx.Err()
		}
		backoff.reset()
		c.handle(ctx, msg)
	}
}

// handBack ends a delivery: it stops pulling, hands the events fetched
// but not handled back to the server so that the next consumer of the
// name gets them at once (not after AckWait), and waits, within a bound,
// until the server knows. Without that, a consumer stopped on a
// connection that stays open would leave its last pull request standing,
// and events published next would go to it and wait out AckWait.
func (c *Consumer) handBack(it jetstream.MessagesContext) {
	// Drain unsubscribes and waits for the server's answer, then gives
	// what is buffered and ends the iterator.
	it.Drain()
	deadline := time.Now().Add(handBackTimeout)
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			it.Stop()
			break
		}
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				it.Stop()
			}
			break
		}
		_ = msg.Nak()
	}
	if c.nc.IsConnected() {
		_ = c.nc.FlushTimeout(handBackTimeout)
	}
}

// bind creates the durable consumer or updates its settings. Settings
// JetStream cannot change on an existing consumer (where it starts) are
// kept as they are.
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	deliver := jetstream.DeliverAllPolicy
	if c.opts.DeliverNew {
		deliver = jetstream.DeliverNewPolicy
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        c.opts.Name,
		Description:    "ocis events consumer " + c.opts.Name,
		DeliverPolicy:  deliver,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.opts.AckWait,
		MaxDeliver:     c.opts.MaxDeliver,
		FilterSubjects: c.subjects,
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream.cfg.Name, cfg)
	var apiErr *jetstream.APIError
	if err != nil && errors.As(err, &apiErr) {
		existing, gerr := c.js.Consumer(ctx, c.stream.cfg.Name, c.opts.Name)
		if gerr != nil {
			return nil, err
		}
		level.Warn(c.logger).Log("msg", "events consumer keeps settings it cannot change", "err", err)
		return existing, nil
	}
	return cons, err
}

// deliveryKey carries a handler's Delivery in its context.
type deliveryKey struct{}

// Delivery says which delivery of an event a handler is given.
type Delivery struct {
	// Attempt counts deliveries of this event to this consumer, from 1.
	Attempt int
	// StreamSeq is the event's position in the stream.
	StreamSeq uint64
	// Stored is when the stream stored the event.
	Stored time.Time
}

// DeliveryFrom returns the Delivery a handler's context carries.
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

// handle gives one delivery to the handler and answers the server.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to answer.
		level.Error(c.logger).Log("msg", "events delivery without metadata, skipped", "subject", msg.Subject(), "err", err)
		return
	}
	d := Delivery{Attempt: int(md.NumDelivered), StreamSeq: md.Sequence.Stream, Stored: md.Timestamp}
	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		c.deadLetter(msg, d, ev, "permanent", fmt.Errorf("decode event: %w", err))
		return
	}
	hctx := context.WithValue(ctx, deliveryKey{}, d)
	hctx = c.opts.Propagator.Extract(hctx, HeaderCarrier(msg.Headers()))

	// The server redelivers after AckWait; a handler that takes long is
	// not dead, so the event's timer is reset while it runs.
	stopKeeping := keepInProgress(msg, c.opts.AckWait/2)
	start := time.Now()
	err = c.call(hctx, ev)
	stopKeeping()
	c.m.duration.Observe(time.Since(start).Seconds())

	var perm *PermanentError
	switch {
	case err == nil:
		_ = msg.Ack()
		c.m.handled.WithLabelValues("ack").Inc()
	case errors.As(err, &perm):
		c.deadLetter(msg, d, ev, "permanent", err)
	case ctx.Err() != nil:
		// Stopping: the next consumer of the name gets the event at once.
		_ = msg.Nak()
		c.m.handled.WithLabelValues("retry").Inc()
		level.Debug(c.logger).Log("msg", "event handed back on stop", "id", ev.ID, "type", ev.Type, "err", err)
	case d.Attempt >= c.opts.MaxDeliver:
		c.deadLetter(msg, d, ev, "max_deliver", err)
	default:
		delay := c.opts.RetryDelays[min(d.Attempt, len(c.opts.RetryDelays))-1]
		_ = msg.NakWithDelay(delay)
		c.m.handled.WithLabelValues("retry").Inc()
		level.Warn(c.logger).Log("msg", "event handler failed, redelivering later", "id", ev.ID, "type", ev.Type,
			"attempt", d.Attempt, "max_deliver", c.opts.MaxDeliver, "retry_in", delay, "err", err)
	}
}

// keepInProgress tells the server every interval that msg is still
// being handled, until the returned function is called.
func keepInProgress(msg jetstream.Msg, every time.Duration) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress()
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// call runs the handler, turning a panic into an error so that one bad
// event cannot take the consumer down.
func (c *Consumer) call(ctx context.Context, ev Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return c.opts.Handler(ctx, ev)
}

// deadLetter terminates a delivery: the server will not deliver it again.
// The event stays in the stream (until MaxAge), findable by its sequence.
func (c *Consumer) deadLetter(msg jetstream.Msg, d Delivery, ev Event, reason string, err error) {
	_ = msg.TermWithReason(reason)
	c.m.handled.WithLabelValues("dead").Inc()
	c.m.deadLetters.WithLabelValues(reason).Inc()
	level.Error(c.logger).Log("msg", "event given up (dead letter)", "reason", reason, "id", ev.ID, "type", ev.Type,
		"stream_seq", d.StreamSeq, "attempt", d.Attempt, "err", err)
}

// watchDeadLetters counts the events the server gave up on because their
// last delivery went unanswered (the consumer died or hung each time).
// Instances sharing the name share a queue group, so each advisory is
// counted once.
func (c *Consumer) watchDeadLetters() (func(), error) {
	subject := advisoryPrefix + c.stream.cfg.Name + "." + c.opts.Name
	sub, err := c.nc.QueueSubscribe(subject, "ocis-events-"+c.opts.Name, func(m *nats.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries uint64 `json:"deliveries"`
		}
		_ = json.Unmarshal(m.Data, &adv)
		c.m.deadLetters.WithLabelValues("unacked").Inc()
		level.Error(c.logger).Log("msg", "event given up (dead letter)", "reason", "unacked",
			"stream_seq", adv.StreamSeq, "deliveries", adv.Deliveries)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// trackLag refreshes the lag gauges every LagInterval until ctx ends.
func (c *Consumer) trackLag(ctx context.Context) {
	t := time.NewTicker(c.opts.LagInterval)
	defer t.Stop()
	for {
		if c.nc.IsConnected() {
			_, _ = c.Lag(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Lag is how far a consumer is behind the stream.
type Lag struct {
	// Pending are events for the consumer not delivered yet.
	Pending uint64 `json:"pending"`
	// AckPending are events delivered and awaiting an ack or a
	// redelivery.
	AckPending uint64 `json:"ack_pending"`
	// Redelivered are events delivered more than once and not yet
	// acknowledged.
	Redelivered uint64 `json:"redelivered"`
}

// Total is the number of events not handled yet: the consumer's lag.
func (l Lag) Total() uint64 { return l.Pending + l.AckPending }

// Lag asks the server how far the consumer is behind, and updates the
// lag gauges with the answer.
func (c *Consumer) Lag(ctx context.Context) (Lag, error) {
	lag, err := consumerLag(ctx, c.js, c.stream.cfg.Name, c.opts.Name)
	if err != nil {
		return Lag{}, err
	}
	c.m.pending.Set(float64(lag.Total()))
	c.m.ackPending.Set(float64(lag.AckPending))
	return lag, nil
}

// ConsumerLag asks the server how far the durable consumer name of the
// stream (StreamName when empty) is behind. It is for those who show the
// lag without running the consumer: `ocis list`, the dashboard. An
// unknown consumer is jetstream.ErrConsumerNotFound.
func ConsumerLag(ctx context.Context, nc *nats.Conn, stream, name string) (Lag, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Lag{}, err
	}
	if stream == "" {
		stream = StreamName
	}
	return consumerLag(ctx, js, stream, name)
}

func consumerLag(ctx context.Context, js jetstream.JetStream, stream, name string) (Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, stream, name)
	if err != nil {
		return Lag{}, fmt.Errorf("events consumer %s lag: %w", name, err)
	}
	info := cons.CachedInfo()
	return Lag{Pending: info.NumPending, AckPending: uint64(info.NumAckPending), Redelivered: uint64(info.NumRedelivered)}, nil
}
