package service

import (
	"context"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// ConnectNATS connects service name to NATS as env.NATSClient says (the
// embedded server of the process when it runs one, else OCIS_NATS_URL),
// naming the connection "<name> <node>" and counting its metrics on reg.
// It returns at once and reconnects forever (natsconn.Connect). It
// returns nil and no error when the process has no NATS (HasNATS false:
// a service run alone, a node with neither the nats service nor
// OCIS_NATS_URL); the service then works without events, and says so.
// The connection makes no attempt before hold is closed (nil: at once;
// HoldNATS). The caller closes the connection after its run group has
// returned.
func ConnectNATS(env Env, name string, reg prometheus.Registerer, hold <-chan struct{}) (*nats.Conn, error) {
	if !HasNATS(env) {
		return nil, nil
	}
	opts := *env.NATSClient
	opts.Name = name + " " + env.Node
	opts.Logger = env.Logger
	opts.Registerer = reg
	opts.Hold = hold
	return natsconn.Connect(opts)
}

// HoldNATS returns the hold of a connection whose first use is an actor
// that begins once the family has started (AfterStart: an events
// publisher, a consumer), for ConnectNATS, and what wraps that actor so
// that the hold ends when its Execute begins. Until then the connection
// does not even try: its handshake would take the service's start and the
// nats server's CPU for nothing while the whole family starts. The hold
// ends with the start, or with the stop when that comes first, the
// publisher then draining over the connection as before. A service run
// alone (no env.Started) gets no hold.
func HoldNATS(env Env) (hold <-chan struct{}, firstUse func(Actor) Actor) {
	if env.Started == nil {
		return nil, func(a Actor) Actor { return a }
	}
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	return ch, func(a Actor) Actor {
		return Actor{
			Execute: func() error {
				release()
				return a.Execute()
			},
			Interrupt: a.Interrupt,
		}
	}
}

// HasNATS reports whether the process reaches NATS at all: the nats
// service runs in it, or OCIS_NATS_URL names servers.
func HasNATS(env Env) bool {
	o := env.NATSClient
	return o != nil && (len(o.URLs) > 0 || o.Embedded != nil)
}

// ValidateNATS checks the NATS client settings a service would connect
// with, without connecting: for a service's Build (or Validate), so that a
// bad OCIS_NATS_URL stops the start instead of crash-looping the service.
func ValidateNATS(env Env) error {
	if !HasNATS(env) {
		return nil
	}
	return env.NATSClient.Validate()
}

// Publisher is what a service's business code needs of the events
// publisher: Publish never blocks and its error never fails a request
// (events.Publisher). Tests pass a fake.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) error
}

// NoPublisher drops every event: the publisher of a service whose process
// has no NATS.
type NoPublisher struct{}

// Publish implements Publisher.
func (NoPublisher) Publish(context.Context, events.Event) error { return nil }

// NewPublisher returns the publisher of a service's events on nc (from
// ConnectNATS) and the actor that sends them, draining for at most half
// the shutdown timeout of b on stop. Without a connection it returns
// NoPublisher and no actor, and logs once that the service publishes
// nothing.
func NewPublisher(nc *nats.Conn, logger log.Logger, reg prometheus.Registerer, b *Base) (Publisher, []Actor, error) {
	if nc == nil {
		level.Info(logger).Log("msg", "no NATS (neither the nats service in this process nor OCIS_NATS_URL): events are not published")
		return NoPublisher{}, nil, nil
	}
	drain := events.DefaultDrainTimeout
	if half := b.ShutdownTimeout / 2; half > 0 && half < drain {
		drain = half
	}
	// The event carries the trace of the request that made it, so its
	// consumer's span joins that trace (a no-op when nothing is traced).
	pub, err := events.NewPublisher(nc, events.PublisherOptions{Logger: logger, Registerer: reg, DrainTimeout: drain,
		Propagator: tracing.EventPropagator{}})
	if err != nil {
		return nil, nil, err
	}
	return pub, []Actor{{Execute: pub.Execute, Interrupt: pub.Interrupt}}, nil
}

// Events gives a service that publishes events (users, storage) its
// publisher: connected to NATS and sent by the returned actor when
// publish is set (the service's --publish-events, true by default) and
// the process has NATS; NoPublisher, without a connection, otherwise,
// said once at start. The actor sends nothing before env.Started
// (AfterStart); events published meanwhile wait in the outbox. closeNATS
// closes the connection, if any: call it after the run group has
// returned, so the publisher has drained.
func Events(env Env, name string, publish bool, logger log.Logger, reg prometheus.Registerer, b *Base) (pub Publisher, actors []Actor, closeNATS func(), err error) {
	closeNATS = func() {}
	if !publish {
		level.Info(logger).Log("msg", "events are not published (--publish-events=false)")
		return NoPublisher{}, nil, closeNATS, nil
	}
	hold, firstUse := HoldNATS(env)
	nc, err := ConnectNATS(env, name, reg, hold)
	if err != nil {
		return nil, nil, closeNATS, err
	}
	if nc != nil {
		closeNATS = nc.Close
	}
	pub, actors, err = NewPublisher(nc, logger, reg, b)
	if err != nil {
		closeNATS()
		return nil, nil, func() {}, err
	}
	// The sending, and with it the binding of the events stream, begins
	// once the family has started: no request waits for it, as Publish
	// only hands the event to the outbox, which keeps what is published
	// meanwhile and is sent first.
	for i := range actors {
		actors[i] = AfterStart(env.Started, firstUse(actors[i]))
	}
	return pub, actors, closeNATS, nil
}

// Publish makes an event of type typ and hands it to pub. It never fails
// the caller: an event that cannot be made or was dropped (already counted
// and logged by the publisher) is logged at debug level.
func Publish(ctx context.Context, logger log.Logger, pub Publisher, typ, actor, subject string, payload any) {
	ev, err := events.New(typ, actor, subject, payload)
	if err == nil {
		err = pub.Publish(ctx, ev)
	}
	if err != nil {
		level.Debug(logger).Log("msg", "event not published", "type", typ, "err", err)
	}
}
