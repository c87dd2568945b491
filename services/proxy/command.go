package proxy

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
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
		return &Config{base: service.NewBase(d, false), MaxUpstreamConns: DefaultOptions().MaxConnsPerUpstream}
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
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
	fs.IntVar(&c.MaxUpstreamConns, "max-upstream-conns", c.MaxUpstreamConns, "connections the proxy opens to one instance at most, for reads and for the rest each; requests beyond wait for one (0: no cap)")
}

// Build implements service.Config.
func (c *Config) Build(env service.Env) (service.Runner, error) {
	keys, err := env.Shared.Keys()
	if err != nil {
		return nil, err
	}
	if env.Registry == nil {
		return nil, errors.New("proxy needs a registry of instances")
	}
	if c.MaxUpstreamConns < 0 {
		return nil, fmt.Errorf("max-upstream-conns %d is negative; 0 means no cap", c.MaxUpstreamConns)
	}
	return &server{cfg: *c, env: env, keys: keys}, nil
}

type server struct {
	cfg  Config
	env  service.Env
	keys *auth.Keys
}

// Run serves the proxy until ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) error {
	reg := service.NewRegistry()
	h := NewHandler(log.With(s.env.Logger, "transport", "http"), NewBalancer(s.env.Registry), s.keys, reg, WithOptions(Options{
		ResponseTimeout:     s.cfg.base.RequestTimeout,
		MaxConnsPerUpstream: s.cfg.MaxUpstreamConns,
		// Below info, the access line would be built only to be dropped.
		AccessLog: s.env.Shared.LogLevel == "debug" || s.env.Shared.LogLevel == "info",
	}))
	defer h.CloseIdle()
	return service.Serve(ctx, up, service.Parts{
		Logger:   s.env.Logger,
		Base:     &s.cfg.base,
		Handler:  h,
		Registry: reg,
	})
}
