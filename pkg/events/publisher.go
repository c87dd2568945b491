package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of PublisherOptions.
const (
	DefaultOutboxSize     = 10000
	DefaultDrainTimeout   = 5 * time.Second
	DefaultAttemptTimeout = 5 * time.Second
	DefaultLinger         = 5 * time.Millisecond
	// maxBatch is how many events one round sends before waiting for
	// their acks: enough to keep the connection busy, few enough that a
	// failed round retries little.
	maxBatch = 256
	// dropLogEvery is the least time between two log lines about dropped
	// events, so an outage logs a summary instead of a line per event.
	dropLogEvery = 10 * time.Second
)

// Errors of Publish. Neither means the caller's work failed: the event is
// counted and logged, and the caller goes on.
var (
	// ErrOutboxFull: the outbox was full, the event was dropped.
	ErrOutboxFull = errors.New("events outbox full: event dropped")
	// ErrClosed: the publisher has stopped, the event was dropped.
	ErrClosed = errors.New("events publisher stopped: event dropped")
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Stream is the stream to publish to, created when missing.
	Stream StreamConfig
	// OutboxSize is how many events may wait to be sent; more are
	// dropped. Default DefaultOutboxSize (at about 500 bytes an event,
	// 5 MB at most).
	OutboxSize int
	// DrainTimeout is how long the actor keeps sending after it was told
	// to stop; what is left then is dropped. Keep it below the service's
	// shutdown timeout. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// AttemptTimeout is how long one send waits for JetStream's ack
	// before trying again. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Linger is how long the actor waits, once it has an event and
	// less than a full round is waiting, for others to join the round.
	// Every round costs a few goroutine wake-ups in the actor, the
	// client and the server whatever its size, so under load events
	// share them; it adds at most Linger to an event's way to the
	// stream. Default DefaultLinger; negative: none.
	Linger time.Duration
	// Propagator puts the trace context of Publish's ctx into the
	// event's headers. Default W3CPropagator.
	Propagator Propagator
	// Logger defaults to no logging.
	Logger log.Logger
	// Registerer gets the publisher's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Publisher sends events to the stream through a bounded in-memory
// outbox. Publish never blocks and never waits for NATS; the actor (Run,
// or Execute and Interrupt) does the sending. Make one per service start.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream *stream
	opts   PublisherOptions
	logger log.Logger
	m      publisherMetrics

	// mu guards closed against Publish: once closed is set under the
	// write lock, no Publish can add to the outbox, so the final sweep
	// sees everything.
	mu     sync.RWMutex
	closed bool
	outbox chan outgoing

	// streamHeader is the value of every message's
	// Nats-Expected-Stream; subjects caches Subject by type, since a
	// service publishes few types, each many times.
	streamHeader []string
	subjects     sync.Map // type → subject

	lastDropLog  atomic.Int64 // unix nanoseconds
	droppedSince atomic.Int64

	stop     chan struct{}
	stopOnce sync.Once

	// round is the batch being sent and its answers; wait bounds the
	// wait for them. Both belong to the actor, the round's answers to
	// the client's ack handlers too.
	round round
	wait  *time.Timer
}

// round is the batch the actor is sending: the client's ack handlers
// record each message's answer, and the last one wakes the actor.
type round struct {
	mu      sync.Mutex
	index   map[*nats.Msg]int // message → its place; cleared when the round ends
	answers []answer
	left    int
	done    chan struct{} // 1-buffered: every message has its answer
}

// answer is what became of one message of a round.
type answer struct {
	got bool
	err error // nil: stored
	at  time.Time
}

// start begins a round of n messages.
func (r *round) start(batch []outgoing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.index)
	if cap(r.answers) < len(batch) {
		r.answers = make([]answer, len(batch))
	}
	r.answers = r.answers[:len(batch)]
	clear(r.answers)
	for i, out := range batch {
		r.index[out.msg] = i
	}
	r.left = len(batch)
	// A signal left by a round given up on.
	select {
	case <-r.done:
	default:
	}
}

// answer records m's answer, if m is part of the round. An answer to an
// earlier send of the same message counts as well: an ack says the
// event is stored, whichever send stored it.
func (r *round) answer(m *nats.Msg, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[m]
	if !ok {
		return
	}
	delete(r.index, m)
	r.answers[i] = answer{got: true, err: err, at: time.Now()}
	r.left--
	if r.left == 0 {
		select {
		case r.done <- struct{}{}:
		default:
		}
	}
}

// end closes the round, after which answers are ignored, and calls f
// with its answers.
func (r *round) end(f func(answers []answer)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.index)
	f(r.answers)
}

// outgoing is one event ready to send.
type outgoing struct {
	msg    *nats.Msg
	id     string
	queued time.Time
}

// NewPublisher returns a publisher on nc. It does not touch the network:
// the stream is found or created by the actor, retrying while NATS or
// JetStream is unreachable, and events wait in the outbox meanwhile.
func NewPublisher(nc *nats.Conn, opts PublisherOptions) (*Publisher, error) {
	if nc == nil {
		return nil, errors.New("events publisher: no NATS connection")
	}
	if opts.OutboxSize <= 0 {
		opts.OutboxSize = DefaultOutboxSize
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	if opts.Propagator == nil {
		opts.Propagator = W3CPropagator{}
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	p := &Publisher{
		nc:     nc,
		opts:   opts,
		logger: opts.Logger,
		outbox: make(chan outgoing, opts.OutboxSize),
		stop:   make(chan struct{}),
		round:  round{index: make(map[*nats.Msg]int, maxBatch), done: make(chan struct{}, 1)},
		wait:   time.NewTimer(time.Hour),
	}
	p.wait.Stop()
	// Every answer to a send, ack or error (a timeout after
	// AttemptTimeout, a lost connection), goes to the round, on the
	// client's goroutine: no channel per event, and one wake-up of the
	// sender per round.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(opts.AttemptTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { p.round.answer(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.round.answer(m, err) }))
	if err != nil {
		return nil, fmt.Errorf("events publisher: %w", err)
	}
	p.js = js
	p.stream = newStream(js, opts.Stream, opts.Logger)
	p.streamHeader = []string{p.stream.cfg.Name}
	p.m = newPublisherMetrics(opts.Registerer, func() float64 { return float64(len(p.outbox)) })
	return p, nil
}

// Publish puts ev in the outbox and returns at once; the actor sends it.
// An empty ID and a zero Time are filled in, and ctx's trace context goes
// into the headers. The error is ErrInvalid (wrapped) for a malformed
// event, a programming error; ErrOutboxFull or ErrClosed when the event
// was dropped, which is already counted and logged. None of them should
// fail the caller's request.
func (p *Publisher) Publish(ctx context.Context, ev Event) error {
	out, err := p.prepare(ctx, ev)
	if err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.drop("closed", 1)
		return ErrClosed
	}
	select {
	case p.outbox <- out:
		return nil
	default:
		p.drop("overflow", 1)
		return ErrOutboxFull
	}
}

// prepare validates ev and builds its message.
func (p *Publisher) prepare(ctx context.Context, ev Event) (outgoing, error) {
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	if err := ev.Validate(); err != nil {
		return outgoing{}, err
	}
	size := 128 + len(ev.ID) + len(ev.Type) + len(ev.Actor) + len(ev.Subject) + len(ev.Payload)
	data, err := appendEvent(make([]byte, 0, size), ev)
	if err != nil {
		return outgoing{}, err
	}
	if len(data) > maxEventSize-4096 {
		return outgoing{}, fmt.Errorf("%w: %s is %d bytes, more than an event may have", ErrInvalid, ev.Type, len(data))
	}
	// The stream's name is the same slice in every message: headers are
	// only read once built, by the client when it sends them.
	h := make(nats.Header, 4)
	h[jetstream.MsgIDHeader] = []string{ev.ID}
	h[jetstream.ExpectedStreamHeader] = p.streamHeader
	msg := &nats.Msg{Subject: p.subject(ev.Type), Data: data, Header: h}
	p.opts.Propagator.Inject(ctx, HeaderCarrier(msg.Header))
	return outgoing{msg: msg, id: ev.ID, queued: time.Now()}, nil
}

// subject is Subject(typ), made once per type.
func (p *Publisher) subject(typ string) string {
	if s, ok := p.subjects.Load(typ); ok {
		return s.(string)
	}
	s := Subject(typ)
	p.subjects.Store(typ, s)
	return s
}

// drop counts n dropped events and logs about them, at most once every
// dropLogEvery.
func (p *Publisher) drop(reason string, n int) {
	p.m.dropped.WithLabelValues(reason).Add(float64(n))
	total := p.droppedSince.Add(int64(n))
	now := time.Now().UnixNano()
	last := p.lastDropLog.Load()
	if now-last < int64(dropLogEvery) || !p.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	p.droppedSince.Add(-total)
	level.Warn(p.logger).Log("msg", "events dropped", "reason", reason, "dropped", total, "outbox", len(p.outbox), "outbox_size", cap(p.outbox))
}

// reportDrops logs the drops not logged yet, if the last line is old
// enough.
func (p *Publisher) reportDrops() {
	now := time.Now().UnixNano()
	last := p.lastDropLog.Load()
	if p.droppedSince.Load() == 0 || now-last < int64(dropLogEvery) || !p.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	n := p.droppedSince.Swap(0)
	level.Warn(p.logger).Log("msg", "events dropped", "dropped", n, "outbox", len(p.outbox), "outbox_size", cap(p.outbox))
}

// Pending is the number of events in the outbox, not yet sent.
func (p *Publisher) Pending() int { return len(p.outbox) }

// Execute runs the sender until Interrupt, then drains: the oklog/run
// actor's first half. Execute runs once per Publisher.
func (p *Publisher) Execute() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return p.Run(ctx)
}

// Interrupt makes Execute drain and return. It never blocks and may be
// called more than once, before or after Execute returned.
func (p *Publisher) Interrupt(error) {
	p.stopOnce.Do(func() { close(p.stop) })
}

// Run sends the outbox's events until ctx ends, then keeps sending for
// at most DrainTimeout, closes the outbox and drops (counting and logging)
// what is left. Events published after that are dropped as well.
func (p *Publisher) Run(ctx context.Context) error {
	// The stream is bound before the first send and again whenever a
	// send says it is gone; a failure to bind only delays the sending.
	// Drops are logged at once only every dropLogEvery; the ticker
	// reports the ones in between, so a burst's end is not left unsaid.
	tick := time.NewTicker(dropLogEvery)
	defer tick.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	// The rounds share one buffer: a round sent in full leaves nothing
	// in it, and one that is not ends the loop.
	buf := make([]outgoing, 0, maxBatch)
	var left []outgoing
	for ctx.Err() == nil && len(left) == 0 {
		var batch []outgoing
		select {
		case <-ctx.Done():
			continue
		case <-tick.C:
			p.reportDrops()
			continue
		case first := <-p.outbox:
			if p.opts.Linger > 0 && len(p.outbox) < maxBatch-1 {
				linger.Reset(p.opts.Linger)
				select {
				case <-linger.C:
				case <-ctx.Done():
				}
				linger.Stop()
			}
			batch = p.collect(buf[:0], first)
		}
		left = p.send(ctx, batch)
	}

	dctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
	defer cancel()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for len(p.outbox) > 0 {
		left = append(left, <-p.outbox)
	}
	if len(left) > 0 {
		level.Info(p.logger).Log("msg", "sending the events left before stopping", "events", len(left), "timeout", p.opts.DrainTimeout)
	}
	for len(left) > 0 && dctx.Err() == nil {
		n := min(len(left), maxBatch)
		unsent := p.send(dctx, left[:n])
		left = append(unsent, left[n:]...)
	}
	if len(left) > 0 {
		p.m.dropped.WithLabelValues("shutdown").Add(float64(len(left)))
		level.Error(p.logger).Log("msg", "events not sent before the drain timeout, dropped", "events", len(left))
	}
	return nil
}

// collect appends first and whatever else is waiting to batch, up to
// maxBatch.
func (p *Publisher) collect(batch []outgoing, first outgoing) []outgoing {
	batch = append(batch, first)
	for len(batch) < maxBatch {
		select {
		case out := <-p.outbox:
			batch = append(batch, out)
		default:
			return batch
		}
	}
	return batch
}

// send publishes batch and waits for the acks, publishing what failed
// again with backoff, until everything is acknowledged or ctx ends; it
// returns what was not acknowledged then, in order. A send that JetStream
// stored but whose ack was lost is dropped as a duplicate on the retry
// (Nats-Msg-Id), within the stream's duplicate window.
func (p *Publisher) send(ctx context.Context, batch []outgoing) []outgoing {
	backoff := retry{min: 100 * time.Millisecond, max: 5 * time.Second}
	for len(batch) > 0 {
		err := p.sendOnce(ctx, &batch)
		if len(batch) == 0 {
			break
		}
		p.m.retries.Add(float64(len(batch)))
		if backoff.n == 0 {
			level.Warn(p.logger).Log("msg", "events not acknowledged, retrying", "events", len(batch), "outbox", len(p.outbox), "err", err)
		} else {
			level.Debug(p.logger).Log("msg", "events not acknowledged, retrying", "events", len(batch), "err", err)
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
			p.stream.unbind()
		}
		if backoff.wait(ctx) != nil {
			return batch
		}
	}
	p.stream.scaleUp(ctx)
	return nil
}

// sendOnce makes one attempt at every event of *batch, leaving in it the
// ones not acknowledged, and returns the first error.
func (p *Publisher) sendOnce(ctx context.Context, batch *[]outgoing) error {
	if !p.stream.bound() {
		if err := p.stream.ensure(ctx); err != nil {
			return err
		}
	}
	if !p.nc.IsConnected() {
		// Published now, the events would sit in the client's reconnect
		// buffer with their ack timers running.
		return nats.ErrConnectionReconnecting
	}
	p.round.start(*batch)
	for _, out := range *batch {
		if _, err := p.js.PublishMsgAsync(out.msg); err != nil {
			// Not sent, so no handler will answer it.
			p.round.answer(out.msg, err)
		}
	}
	// The client answers every send within AttemptTimeout; the margin
	// only guards against an answer it lost.
	var firstErr error
	p.wait.Reset(p.opts.AttemptTimeout + time.Second)
	select {
	case <-p.round.done:
	case <-p.wait.C:
		firstErr = errNoAnswer
	case <-ctx.Done():
		firstErr = ctx.Err()
	}
	p.wait.Stop()
	p.round.end(func(answers []answer) {
		failed := (*batch)[:0]
		stored := 0
		for i, out := range *batch {
			a := answers[i]
			if !a.got || a.err != nil {
				if a.err != nil {
					firstErr = cmpErr(firstErr, a.err)
				}
				failed = append(failed, out)
				continue
			}
			stored++
			p.m.latency.Observe(a.at.Sub(out.queued).Seconds())
		}
		p.m.published.Add(float64(stored))
		*batch = failed
	})
	return firstErr
}

// errNoAnswer is a send the client never answered.
var errNoAnswer = errors.New("no answer from the NATS client")

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
