package main

import (
	"errors"
	"flag"
	"net"
	"os"
	"time"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// runtimeSettings are the runtime's own flags, beside the shared ones and those of
// each service.
type runtimeSettings struct {
	Addr   string
	Token  string
	Node   string
	Policy supervisor.Policy
	Select supervisor.Selection
	// AdvertiseHost is the host other nodes dial for a service that
	// listens on every interface (OCIS_ADVERTISE_HOST).
	AdvertiseHost string
	// RegistryTTL is how long a node's record outlives its last write
	// (OCIS_REGISTRY_TTL): a lost node leaves every table within it.
	RegistryTTL time.Duration
	// NATS is how the runtime reaches NATS when this node runs no nats
	// service (OCIS_NATS_URL), and the client credentials either way.
	NATS natsconn.Options
}

func newSettings() *runtimeSettings {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return &runtimeSettings{
		Addr: "127.0.0.1:9250", Node: registry.NodeName(host), AdvertiseHost: host,
		RegistryTTL: registry.DefaultTTL, Policy: supervisor.DefaultPolicy(),
	}
}

// registerClient defines what a client of the control API needs:
// --runtime.addr and --runtime.token (OCIS_RUNTIME_ADDR, OCIS_RUNTIME_TOKEN).
func (s *runtimeSettings) registerClient(set *config.Set) {
	set.Register("runtime.", "runtime", func(fs *flag.FlagSet) {
		config.AddrVar(fs, &s.Addr, "addr", s.Addr, "address of the runtime's control API")
		fs.StringVar(&s.Token, "token", s.Token, "bearer token of the control API, the same on every node (written by ocis init; default: the token file runtime.token in the base data path)")
	})
}

// registerServer defines the flags of `ocis server`.
func (s *runtimeSettings) registerServer(set *config.Set) {
	s.registerClient(set)
	set.Register("runtime.", "runtime", func(fs *flag.FlagSet) {
		p := &s.Policy
		config.DurationVar(fs, &p.BackoffMin, "backoff-min", p.BackoffMin, "wait before the first restart of a failed service")
		config.DurationVar(fs, &p.BackoffMax, "backoff-max", p.BackoffMax, "longest wait between restarts")
		fs.IntVar(&p.MaxFailures, "max-failures", p.MaxFailures, "failures within the failure window that mark a service failed")
		config.DurationVar(fs, &p.FailureWindow, "failure-window", p.FailureWindow, "window in which failures are counted")
		config.DurationVar(fs, &p.StartTimeout, "start-timeout", p.StartTimeout, "how long a service may take to become ready")
		config.DurationVar(fs, &p.StopGrace, "stop-grace", p.StopGrace, "how long past its shutdown timeout a stopping service is waited for before it is abandoned and marked failed")
	})
	set.Register("", "", func(fs *flag.FlagSet) {
		fs.StringVar(&s.Node, "node", s.Node, "name of this machine among the nodes: letters, digits, _ and - (default: the short host name)")
		fs.StringVar(&s.AdvertiseHost, "advertise-host", s.AdvertiseHost, "host other nodes dial for a service listening on every interface (0.0.0.0, ::); a service on a specific address publishes that address")
		config.DurationVar(fs, &s.RegistryTTL, "registry-ttl", s.RegistryTTL, "how long a node stays in the registry after its last write: a lost node leaves routing within it")
		s.NATS.RegisterFlags(fs)
		config.ListVar(fs, &s.Select.Run, "run-services", "run only these services (comma list)")
		config.ListVar(fs, &s.Select.Exclude, "exclude-run-services", "run all default services but these")
		config.ListVar(fs, &s.Select.Add, "add-run-services", "run the default services and these")
	})
}

// resolveToken returns the configured token or the token file's, creating
// the file when create is set.
func (s *runtimeSettings) resolveToken(shared *service.Shared, create bool) (string, error) {
	if s.Token != "" {
		return s.Token, nil
	}
	if create {
		return loadOrCreateToken(tokenPath(shared))
	}
	b, err := os.ReadFile(tokenPath(shared))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// validate checks the node and runtime settings right after loading,
// before anything starts; a refused flag is named by its full name, for
// the family's set to explain (config.Set.Explain with prefix "").
func (s *runtimeSettings) validate() error {
	var errs []error
	if err := registry.ValidateNodeName(s.Node); err != nil {
		errs = append(errs, config.Invalid("node", "%v", err))
	}
	if s.RegistryTTL < time.Second {
		errs = append(errs, config.Invalid("registry-ttl", "want at least 1s"))
	}
	if s.AdvertiseHost == "" {
		errs = append(errs, config.Invalid("advertise-host", "empty: other nodes could not dial this one"))
	}
	p := s.Policy
	if p.MaxFailures < 0 {
		errs = append(errs, config.Invalid("runtime.max-failures", "want 0 or more failures (0: the first failure marks a service failed)"))
	}
	if p.BackoffMin > p.BackoffMax {
		errs = append(errs, config.Invalid("runtime.backoff-min", "longer than --runtime.backoff-max %s", p.BackoffMax))
	}
	return errors.Join(errs...)
}

// advertise turns a listen address into the one other nodes dial: a
// wildcard host (":9150", "0.0.0.0:9150", "[::]:9150") becomes the
// advertise host; a specific address, loopback included, is published as
// is (every node on one machine, as in the loopback tests, dials those).
func (s *runtimeSettings) advertise(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = s.AdvertiseHost
	}
	return net.JoinHostPort(host, port)
}
