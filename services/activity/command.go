package activity

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Name is the service's name in the catalogue, on the CLI and in env vars.
const Name = "activity"

// ConsumerName is the durable consumer of the activity service on node.
// Each instance keeps its own bbolt file, so each must see every event:
// instances sharing one name would share the events out between them
// (docs/events.md, Consumers). The node name makes it unique in the
// system and stable across restarts, so a restarted instance continues
// where it stopped.
func ConsumerName(node string) string { return Name + "-" + node }

// Descriptor describes the activity service to the runtime.
func Descriptor() service.Descriptor {
	api := API(&Endpoints{})
	d := service.Descriptor{
		Name:      Name,
		Summary:   "each user's activity log, from the events of the other services",
		HTTPAddr:  "127.0.0.1:9160",
		DebugAddr: "127.0.0.1:9165",
		Routes:    api.Prefixes(),
		Public:    api.Public(),
		// `ocis list` shows how far behind this node's consumer is.
		Consumers: func(node string) []string { return []string{ConsumerName(node)} },
	}
	d.NewConfig = func() service.Config {
		return &Config{base: service.NewBase(d, true)}
	}
	return d
}

// Config holds the activity service's settings.
type Config struct {
	base service.Base
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
}

// Validate checks, before anything starts, what Build would refuse
// without opening anything: a node name too long for the consumer name
// is a setting to change, not a crash loop.
func (c *Config) Validate(env service.Env) error {
	// Node names are already [A-Za-z0-9_-]; JetStream takes 64 at most.
	if name := ConsumerName(env.Node); len(name) > 64 {
		return fmt.Errorf("activity consumer name %q is longer than 64 characters: use a shorter node name (--node, OCIS_NODE)", name)
	}
	return errors.Join(c.base.Validate(), service.ValidateNATS(env))
}

// Build implements service.Config.
func (c *Config) Build(env service.Env) (service.Runner, error) {
	if err := c.Validate(env); err != nil {
		return nil, err
	}
	keys, err := env.Shared.Keys()
	if err != nil {
		return nil, err
	}
	return &server{cfg: *c, env: env, keys: keys}, nil
}

// server is one started instance of the activity service.
type server struct {
	cfg  Config
	env  service.Env
	keys *auth.Keys
}

// pruneEvery is how often handled-event marks and tombstones that no
// delivery can need any more are dropped.
const pruneEvery = 6 * time.Hour

// Run opens the store, consumes events into it and serves the logs until
// ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) (err error) {
	logger := s.env.Logger
	st, err := openStore(s.cfg.base.DataPath(s.env.Shared, Name))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.close()) }()

	reg := service.NewRegistry()
	// The connection's first use is the consumer, attached once the
	// family has started: it does not even try before.
	hold, firstUse := service.HoldNATS(s.env)
	nc, err := service.ConnectNATS(s.env, Name, reg, hold)
	if err != nil {
		return err
	}
	// The first prune, a write to the store, waits for the family's
	// start as well: it serves no request.
	actors := []service.Actor{service.AfterStart(s.env.Started, pruner(logger, st))}
	if nc == nil {
		level.Info(logger).Log("msg", "no NATS (neither the nats service in this process nor OCIS_NATS_URL): serving the stored logs, consuming no events")
	} else {
		// Closed after the group has returned: the consumer has handed
		// back what it held by then.
		defer nc.Close()
		cons, err := events.NewConsumer(nc, events.ConsumerOptions{
			Name:       ConsumerName(s.env.Node),
			Types:      Types,
			Handler:    s.env.Tracing.For(Name).Consume(st.apply), // a span per delivery, in the trace of the request that made the event
			Logger:     logger,
			Registerer: reg,
		})
		if err != nil {
			return err
		}
		level.Info(logger).Log("msg", "consuming events", "consumer", ConsumerName(s.env.Node), "types", fmt.Sprint(Types))
		// The logs are served from the store alone, so the consumer is
		// attached (and the stream bound) once the family has started,
		// not during the start: it then catches up on whatever was
		// published meanwhile, as after any stop.
		actors = append(actors, service.AfterStart(s.env.Started, firstUse(service.Actor{Execute: cons.Execute, Interrupt: cons.Interrupt})))
	}

	svc := newLogs(st)
	return service.ServeAPIWith(ctx, up, s.env, Name, &s.cfg.base, reg, func(chain endpoint.Chain, logger log.Logger) http.Handler {
		return NewHTTPHandler(MakeEndpoints(svc, chain), logger, s.keys)
	}, actors...)
}

// pruner is the actor that drops old handled-event marks and tombstones,
// at start and every pruneEvery.
func pruner(logger log.Logger, st *store) service.Actor {
	stop := make(chan struct{})
	return service.Actor{
		Execute: func() error {
			t := time.NewTicker(pruneEvery)
			defer t.Stop()
			for {
				marks, tombstones, err := st.prune(time.Now())
				if err != nil {
					level.Warn(logger).Log("msg", "prune handled events", "err", err)
				} else if marks+tombstones > 0 {
					level.Debug(logger).Log("msg", "pruned handled events", "marks", marks, "tombstones", tombstones)
				}
				select {
				case <-stop:
					return nil
				case <-t.C:
				}
			}
		},
		Interrupt: func(error) { close(stop) },
	}
}
