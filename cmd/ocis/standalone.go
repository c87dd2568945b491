package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// standalone is the settings of `ocis <service> server` and `… health`: the
// shared flags and the service's own, unprefixed, with the same env vars as
// in the family.
type standalone struct {
	set    *config.Set
	shared *service.Shared
	cfg    service.Config
}

func newStandalone(d service.Descriptor, usage io.Writer) *standalone {
	s := &standalone{set: config.NewSet(d.Name, usage), shared: service.NewShared(), cfg: d.NewConfig()}
	s.set.Register("", "", s.shared.RegisterFlags)
	s.set.Register("", d.Name, s.cfg.RegisterFlags)
	return s
}

func (s *standalone) load() error {
	return s.set.Load(func() (string, error) { return s.shared.ConfigPath(), nil })
}

// standaloneCommand returns `ocis <service> server`.
func standaloneCommand(a *app, d service.Descriptor) *ffcli.Command {
	s := newStandalone(d, a.usage)
	return &ffcli.Command{
		Name:       "server",
		ShortUsage: fmt.Sprintf("ocis %s server [flags]", d.Name),
		ShortHelp:  fmt.Sprintf("run %s alone, without the runtime", d.Name),
		FlagSet:    s.set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("server", args); err != nil {
				return err
			}
			// A key of the config file no command knows is a typo: refused.
			s.set.CheckKeys(knownKeys(a.cat))
			if err := s.load(); err != nil {
				return err
			}
			return runStandalone(a.cat, d, s, a.stdout, a.stderr)
		},
	}
}

// staticRegistry is the registry of a service running alone: every other
// service of the catalogue at the address its own settings give (env vars or
// the config file), so a standalone proxy routes to standalone services.
func staticRegistry(cat service.Catalogue, self string, shared *service.Shared) (registry.Registry, error) {
	reg := registry.NewMemory()
	for _, d := range cat {
		if d.Name == self || len(d.Routes) == 0 {
			continue
		}
		cfg := d.NewConfig()
		set := config.NewSet(d.Name, io.Discard)
		set.Register("", d.Name, cfg.RegisterFlags)
		if err := set.Load(func() (string, error) { return shared.ConfigPath(), nil }); err != nil {
			return nil, err
		}
		in := registry.Instance{Service: d.Name, Node: "static", Addr: service.Dialable(cfg.Base().HTTPAddr), Routes: d.Routes, Public: d.Public}
		if err := reg.Register(in); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// runStandalone runs one service in a group with the signal actor; no
// supervisor restarts it, its process manager does.
func runStandalone(cat service.Catalogue, d service.Descriptor, s *standalone, stdout, stderr io.Writer) error {
	logger, closeLog, err := logging.Open(stderr, logging.Options{Level: s.shared.LogLevel, Format: s.shared.LogFormat, File: s.shared.LogFile})
	if err != nil {
		return err
	}
	defer closeLog()
	logger = log.With(logger, "service", d.Name)
	warnUnknown(logger, s.set)
	env := service.Env{Logger: logger, Shared: s.shared, Node: "standalone"}
	// Every setting is checked before anything opens; a refusal names
	// the flag, its env var, the value and where it came from.
	if err := s.set.Explain("", errors.Join(s.shared.Validate(), s.cfg.Validate(env))); err != nil {
		return err
	}
	// Its own data dir only: services run alone may share a base data
	// path (lockData).
	locks, err := lockData(fmt.Sprintf("ocis %s server", d.Name), "", s.shared, map[string]service.Config{d.Name: s.cfg}, []string{d.Name})
	if err != nil {
		return err
	}
	defer locks.Release()
	instances, err := staticRegistry(cat, d.Name, s.shared)
	if err != nil {
		return err
	}
	tr, stopTracing, err := startTracing(s.shared, logger, "standalone", stdout)
	if err != nil {
		return err
	}
	defer stopTracing()
	env.Registry, env.Tracing = instances, tr
	logSettings(logger, serviceSettings(s.set, d.Name, ""), "")
	svc, err := s.cfg.Build(env)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	var g run.Group
	// Signals: SIGINT or SIGTERM ends the group; a second one exits at once.
	addSignalActor(&g, logger)
	// The service: serves until interrupted, then drains.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			return svc.Run(ctx, func(a service.Addrs) {
				level.Info(logger).Log("msg", "serving", "http", a.HTTP, "debug", a.Debug)
			})
		}, func(error) {
			cancel()
		})
	}
	err = g.Run()
	if err == nil || errors.Is(err, run.ErrSignal) {
		return nil
	}
	return fmt.Errorf("%s: %w", d.Name, err)
}
