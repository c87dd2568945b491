package runtime

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// serviceCommand is `ocis <service>` with its verbs `server` and `health`.
func serviceCommand(cat service.Catalogue, d service.Descriptor, usage io.Writer, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
	fs.SetOutput(usage)
	return &ffcli.Command{
		Name:        d.Name,
		ShortUsage:  fmt.Sprintf("ocis %s server|health [flags]", d.Name),
		ShortHelp:   d.Summary,
		FlagSet:     fs,
		Subcommands: []*ffcli.Command{standaloneCommand(cat, d, usage, stderr), healthCommand(cat, d, usage, stdout)},
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q for service %s; use server or health", args[0], d.Name)}
		},
	}
}

// standalone is the settings of `ocis <service> server`: the shared flags
// and the service's own, unprefixed, with the same env vars as in the family.
type standalone struct {
	cat    service.Catalogue
	set    *config.Set
	shared *service.Shared
	cfg    service.Config
}

func newStandalone(cat service.Catalogue, d service.Descriptor, usage io.Writer) *standalone {
	s := &standalone{cat: cat, set: config.NewSet(d.Name, usage), shared: service.NewShared(), cfg: d.NewConfig()}
	s.set.Register("", "", s.shared.RegisterFlags)
	s.set.Register("", d.Name, s.cfg.RegisterFlags)
	return s
}

func (s *standalone) load() error {
	return s.set.Load(func() (string, error) { return s.shared.ConfigPath(), nil })
}

func standaloneCommand(cat service.Catalogue, d service.Descriptor, usage io.Writer, stderr io.Writer) *ffcli.Command {
	s := newStandalone(cat, d, usage)
	return &ffcli.Command{
		Name:       "server",
		ShortUsage: fmt.Sprintf("ocis %s server [flags]", d.Name),
		ShortHelp:  fmt.Sprintf("run %s alone, without the runtime", d.Name),
		FlagSet:    s.set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("server", args); err != nil {
				return err
			}
			if err := s.load(); err != nil {
				return err
			}
			return runStandalone(d, s, stderr)
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
		in := registry.Instance{Service: d.Name, Node: "static", Addr: dialable(cfg.Base().HTTPAddr), Routes: d.Routes}
		if err := reg.Register(in); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// runStandalone runs one service in a group with the signal actor; no
// supervisor restarts it, its process manager does.
func runStandalone(d service.Descriptor, s *standalone, stderr io.Writer) error {
	logger, err := logging.New(stderr, s.shared.LogLevel, s.shared.LogFormat)
	if err != nil {
		return err
	}
	logger = log.With(logger, "service", d.Name)
	instances, err := staticRegistry(s.cat, d.Name, s.shared)
	if err != nil {
		return err
	}
	svc, err := s.cfg.Build(service.Env{Logger: logger, Shared: s.shared, Node: "standalone", Registry: instances})
	if err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	var g run.Group
	addSignalActor(&g, logger)
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
	var sig run.SignalError
	if errors.As(err, &sig) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	return nil
}

func healthCommand(cat service.Catalogue, d service.Descriptor, usage io.Writer, stdout io.Writer) *ffcli.Command {
	s := newStandalone(cat, d, usage)
	return &ffcli.Command{
		Name:       "health",
		ShortUsage: fmt.Sprintf("ocis %s health [flags]", d.Name),
		ShortHelp:  fmt.Sprintf("exit 0 when %s's /healthz answers 200", d.Name),
		FlagSet:    s.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("health", args); err != nil {
				return err
			}
			if err := s.load(); err != nil {
				return err
			}
			url := "http://" + dialable(s.cfg.Base().DebugAddr) + "/healthz"
			if err := probe(ctx, url); err != nil {
				return fmt.Errorf("%s is not healthy: %w", d.Name, err)
			}
			fmt.Fprintf(stdout, "%s is healthy (%s)\n", d.Name, url)
			return nil
		},
	}
}

// dialable turns a listen address into one a client can dial: a wildcard
// host becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
