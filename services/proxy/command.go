package proxy

import (
	"context"
	"errors"
	"flag"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Name is the service's name in the catalogue, on the CLI and in env vars.
const Name = "proxy"

// Descriptor describes the proxy to the runtime.
func Descriptor() service.Descriptor {
	d := service.Descriptor{
		Name:      Name,
		Summary:   "the single entry point: routes requests to the owning service",
		HTTPAddr:  "127.0.0.1:9200",
		DebugAddr: "127.0.0.1:9205",
	}
	d.NewConfig = func() service.Config {
		return &Config{base: service.NewBase(d, false), MaxUpstreamConns: DefaultOptions().MaxConnsPerUpstream, DataPlane: PlaneAuto}
	}
	return d
}

// Config holds the proxy's settings. Its --request-timeout bounds, for a
// request forwarded to an instance in another process, the wait for that
// instance's answer (status and headers) once the request, body included,
// was sent: a slow upload is never cut by it, nor a download streaming
// back. A request handed to an instance in this process is bounded by that
// service's own --request-timeout instead.
type Config struct {
	base service.Base
	// MaxUpstreamConns caps the connections to one instance (per path:
	// bodiless reads, everything else); 0 means no cap.
	MaxUpstreamConns int
	// DataPlane is the HTTP server the proxy serves on (PlaneAuto,
	// PlaneNetHTTP, PlaneFastHTTP).
	DataPlane string
}

// The proxy's data planes. Auto is fasthttp when the proxy runs alone in
// its process (`ocis proxy server`: no instance can be in the process, so
// no request is ever handed to an http.Handler there) and net/http
// otherwise, where colocated calls keep their direct hand-over.
const (
	PlaneAuto     = "auto"
	PlaneNetHTTP  = "net/http"
	PlaneFastHTTP = "fasthttp"
)

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
	fs.StringVar(&c.DataPlane, "data-plane", c.DataPlane, "the HTTP server the proxy serves on: auto (fasthttp when the proxy runs alone in its process, net/http otherwise), net/http or fasthttp")
	fs.IntVar(&c.MaxUpstreamConns, "max-upstream-conns", c.MaxUpstreamConns, "connections the proxy opens to one instance at most, for reads and for the rest each; requests beyond wait for one (0: no cap)")
}

// Validate implements service.Config.
func (c *Config) Validate(env service.Env) error {
	var errs []error
	errs = append(errs, c.base.Validate())
	if c.MaxUpstreamConns < 0 {
		errs = append(errs, config.Invalid("max-upstream-conns", "%d is negative; 0 means no cap", c.MaxUpstreamConns))
	}
	switch c.DataPlane {
	case PlaneAuto, PlaneNetHTTP, PlaneFastHTTP:
	default:
		errs = append(errs, config.Invalid("data-plane", "%q is none of %s, %s, %s", c.DataPlane, PlaneAuto, PlaneNetHTTP, PlaneFastHTTP))
	}
	if hasNATS(env.NATSClient) {
		errs = append(errs, env.NATSClient.Validate())
	}
	return errors.Join(errs...)
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
	if env.Registry == nil {
		return nil, errors.New("proxy needs a registry of instances")
	}
	return &server{cfg: *c, env: env, keys: keys}, nil
}

type server struct {
	cfg  Config
	env  service.Env
	keys *auth.Keys
}

// placedService is the service whose instances each hold some users'
// files: every request of a user goes to the instance that user is placed
// on. Named here, not imported, since the proxy imports no service.
const placedService = "storage"

// Run serves the proxy until ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) error {
	reg := service.NewRegistry()
	placer, actors, stopPlacement := s.placement(reg)
	defer stopPlacement()
	balancer := NewBalancer(s.env.Registry).Placed(placedService, placer).
		Ejecting(EjectOptions{Logger: log.With(s.env.Logger, "component", "balancer"), Registerer: reg})
	h := NewHandler(log.With(s.env.Logger, "transport", "http"), balancer, s.keys, reg, WithOptions(Options{
		ResponseTimeout:     s.cfg.base.RequestTimeout,
		MaxConnsPerUpstream: s.cfg.MaxUpstreamConns,
		// Below info, the access line would be built only to be dropped.
		AccessLog: s.env.Shared.LogLevel == "debug" || s.env.Shared.LogLevel == "info",
		Tracing:   s.env.Tracing.For(Name),
	}))
	defer h.CloseIdle()
	serve := service.Serve
	if s.fast() {
		serve = ServeFast
	}
	return serve(ctx, up, service.Parts{
		Logger:   s.env.Logger,
		Base:     &s.cfg.base,
		Handler:  h,
		Registry: reg,
		Actors:   actors,
		Tracing:  s.env.Tracing.For(Name),
	})
}

// fast reports whether the proxy serves on the fasthttp plane. A process
// that started no family (env.Started is nil: `ocis proxy server`) holds
// no instance the proxy could hand a request to.
func (s *server) fast() bool {
	switch s.cfg.DataPlane {
	case PlaneFastHTTP:
		return true
	case PlaneAuto:
		return s.env.Started == nil
	}
	return false
}

// placement returns the placer of the storage instances and the actor
// that follows the placement bucket. A process with no NATS at all gets
// the static placer, which needs no bucket while one storage node runs.
// The actor opens the proxy's own connection, which never waits for NATS,
// so the proxy serves at once, and closes it when it ends; cancel ends it
// if the group never ran.
func (s *server) placement(reg prometheus.Registerer) (*placement.Placer, []service.Actor, context.CancelFunc) {
	if !hasNATS(s.env.NATSClient) {
		return placement.Static(), nil, func() {}
	}
	logger := log.With(s.env.Logger, "component", "placement")
	opts := *s.env.NATSClient
	opts.Name, opts.Logger, opts.Registerer = "proxy "+s.env.Node, logger, reg
	placer := placement.NewPlacer(placement.Options{Logger: logger, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	actor := service.Actor{
		// Run returns only once ctx ends (or for a bucket it can never
		// open): NATS being away is waited out, known users served.
		Execute: func() error {
			nc, err := natsconn.Connect(opts) // validated by Build
			if err != nil {
				return err
			}
			defer nc.Close()
			return placer.Run(ctx, nc)
		},
		Interrupt: func(error) { cancel() },
	}
	// The bucket is opened once the family has started, not during the
	// start: until then a storage request waits for it within the
	// placer's bound (Placer.openStore), never routed by a guess.
	return placer, []service.Actor{service.AfterStart(s.env.Started, actor)}, cancel
}

// hasNATS reports whether o names a NATS to reach: a server in this
// process or some URL.
func hasNATS(o *natsconn.Options) bool {
	return o != nil && (len(o.URLs) > 0 || o.Embedded != nil)
}
