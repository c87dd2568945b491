package storage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Name is the service's name in the catalogue, on the CLI and in env vars.
const Name = "storage"

// Descriptor describes the storage service to the runtime.
func Descriptor() service.Descriptor {
	api := API(&Endpoints{})
	d := service.Descriptor{
		Name:      Name,
		Summary:   "per-user files: streamed uploads, downloads with Range and ETag",
		HTTPAddr:  "127.0.0.1:9150",
		DebugAddr: "127.0.0.1:9155",
		Routes:    api.Prefixes(),
		Public:    api.Public(),
	}
	d.NewConfig = func() service.Config {
		return &Config{base: service.NewBase(d, true), PublishEvents: true}
	}
	return d
}

// Config holds the storage service's settings.
type Config struct {
	base service.Base
	// Quota is the bytes each user may store; 0 means no limit.
	Quota int64
	// PublishEvents: the service publishes its events (docs/events.md);
	// false publishes none and leaves NATS alone.
	PublishEvents bool
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
	config.SizeVar(fs, &c.Quota, "quota", c.Quota, "what each user may store, in bytes or with a unit (10MB, 1GiB); 0: no limit")
	fs.BoolVar(&c.PublishEvents, "publish-events", c.PublishEvents, "publish file.written and file.deleted to the event bus (the activity log shows them); false: publish none")
}

// Validate implements service.Config.
func (c *Config) Validate(env service.Env) error {
	var errs []error
	errs = append(errs, c.base.Validate())
	if c.Quota < 0 {
		errs = append(errs, config.Invalid("quota", "quota %d is negative; 0 means no limit", c.Quota))
	}
	errs = append(errs, service.ValidateNATS(env))
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
	return &server{cfg: *c, env: env, keys: keys}, nil
}

// server is one started instance of the storage service.
type server struct {
	cfg  Config
	env  service.Env
	keys *auth.Keys
}

// Run opens the metadata and the data dir, repairs what the last run left
// behind, and serves until ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) (err error) {
	logger := s.env.Logger
	dir := s.cfg.base.DataPath(s.env.Shared, Name)
	st, err := openStore(dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.close()) }()
	d, err := openDisk(dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.close()) }()

	svc := newFiles(st, d, s.cfg.Quota, s.env.Shared.Revocations)
	// Before the listeners open: no request may see the metadata before
	// it agrees with the files again.
	rep, err := svc.recover()
	if err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	level.Info(logger).Log("msg", "files checked", "leftover_uploads", rep.Uploads, "repaired", rep.Repaired, "dropped", rep.Dropped)

	reg := service.NewRegistry()
	pub, actors, closeNATS, err := service.Events(s.env, Name, s.cfg.PublishEvents, logger, reg, &s.cfg.base)
	if err != nil {
		return err
	}
	defer closeNATS() // after the group: the publisher has drained by then
	svc.events, svc.logger = pub, logger

	remover := newAccountRemover(logger, svc, s.env.Shared.Revocations)
	actors = append(actors, remover.actor())
	return service.ServeAPIWith(ctx, up, s.env, Name, &s.cfg.base, reg, func(chain endpoint.Chain, logger log.Logger) http.Handler {
		return NewHTTPHandler(MakeEndpoints(svc, chain), logger, s.keys)
	}, actors...)
}
