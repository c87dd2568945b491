package proxy

import (
	"context"
	"errors"
	"flag"

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
	d.NewConfig = func() service.Config { return &Config{base: service.NewBase(d, false)} }
	return d
}

// Config holds the proxy's settings.
type Config struct {
	base service.Base
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { c.base.RegisterFlags(fs) }

// Build implements service.Config.
func (c *Config) Build(env service.Env) (service.Runner, error) {
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

// Run serves the proxy until ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) error {
	reg := service.NewRegistry()
	h := NewHandler(log.With(s.env.Logger, "transport", "http"), NewBalancer(s.env.Registry), s.keys, reg)
	return service.Serve(ctx, up, service.Parts{
		Logger:   s.env.Logger,
		Base:     &s.cfg.base,
		Handler:  h,
		Registry: reg,
	})
}
