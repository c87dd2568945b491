package main

import (
	"flag"
	"os"

	"github.com/ocis-runtime/ocis/pkg/config"
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
}

func newSettings() *runtimeSettings {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return &runtimeSettings{Addr: "127.0.0.1:9250", Node: host, Policy: supervisor.DefaultPolicy()}
}

// registerClient defines what a client of the control API needs:
// --runtime.addr and --runtime.token (OCIS_RUNTIME_ADDR, OCIS_RUNTIME_TOKEN).
func (s *runtimeSettings) registerClient(set *config.Set) {
	set.Register("runtime.", "runtime", func(fs *flag.FlagSet) {
		config.AddrVar(fs, &s.Addr, "addr", s.Addr, "address of the runtime's control API")
		fs.StringVar(&s.Token, "token", s.Token, "bearer token of the control API (default: the token file in the base data path)")
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
		fs.StringVar(&s.Node, "node", s.Node, "name of this machine among the nodes")
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
