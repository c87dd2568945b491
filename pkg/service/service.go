// Package service is the contract every member of the family implements:
// its descriptor, its config, and the run group that serves it.
package service

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// Runner is one started instance of a member of the family: what the
// supervisor runs. It is not the business interface a service's
// service.go declares (users.Service, storage.Service); it wraps one.
type Runner interface {
	// Run serves until ctx is done, then drains and returns nil; it returns
	// an error when it cannot serve. It calls up once, as soon as its
	// listeners are open, with their real addresses.
	Run(ctx context.Context, up func(Addrs)) error
}

// Addrs are the addresses a started service listens on.
type Addrs struct {
	HTTP  string
	Debug string
	// Handler serves the HTTP API in this process, for callers in the same
	// process (the proxy) that can skip the network. It drains like the
	// listener when the service stops.
	Handler http.Handler
	// Metrics is the service's own metrics registry, the one its debug
	// listener serves, for readers in the same process (the dashboard)
	// that need not scrape it over HTTP. Nil for a service without one.
	Metrics prometheus.Gatherer
	// Ready is the condition the debug listener's /readyz answers 200 on,
	// for the supervisor in the same process: it waits on it directly
	// instead of sending HTTP requests to its own process while every
	// service starts. Nil means ask /readyz over the network.
	Ready func() bool
}

// Descriptor describes one member of the family to the runtime and the CLI.
type Descriptor struct {
	Name    string
	Summary string
	// HTTPAddr and DebugAddr are the default listen addresses.
	HTTPAddr  string
	DebugAddr string
	// Routes are the path prefixes the service owns, and Public the
	// patterns of its routes that take requests without a token
	// ("POST /api/v1/tokens"). A service with an HTTP API derives both
	// from its transport.API (API.Prefixes, API.Public) rather than
	// listing them again; the runtime declares them in the registry,
	// where the proxy reads them.
	Routes []string
	Public []string
	// DependsOn names services that must be running before this one starts.
	DependsOn []string
	// Fronts names services this one forwards requests to (the proxy
	// fronts every service that owns routes). It orders shutdown only:
	// this service stops accepting and drains before any of them begins
	// to stop, so a request it accepted never meets one already stopping.
	// Unlike DependsOn it never holds back this service's start, and this
	// service keeps running while one of them is killed or not enabled.
	Fronts []string
	// Optional services are left out of the default set; operators add
	// them with OCIS_ADD_RUN_SERVICES.
	Optional bool
	// Consumers, when set, names the durable event consumers an instance
	// of the service on node runs (activity: "activity-<node>"): the
	// runtime asks NATS how far behind they are and shows it in
	// `ocis list` (the lag).
	Consumers func(node string) []string
	// NewConfig returns the service's config holding its defaults.
	NewConfig func() Config
}

// Default reports whether the service is in the default set.
func (d Descriptor) Default() bool { return !d.Optional }

// Config is a service's settings. It owns its flags and builds a fresh
// Runner from them for every start.
type Config interface {
	// RegisterFlags defines the service's flags, unprefixed; the caller
	// namespaces them ("users.http-addr") when the family runs together.
	RegisterFlags(fs *flag.FlagSet)
	// Base returns the settings every service has.
	Base() *Base
	// Validate checks every setting that can be checked without opening
	// anything (no file, no socket, no connection), right after loading
	// and before anything of the process starts, so that a bad value
	// stops the command instead of crash-looping the service. A refused
	// flag is reported with config.Invalid(flag, …), which the command
	// turns into an error naming the flag, its env var, its value and
	// where it came from.
	Validate(env Env) error
	// Build returns a service ready to Run. A setting Validate accepts
	// may still fail here (a data dir that cannot be read): the runtime
	// then marks the service failed at once, without retrying.
	Build(env Env) (Runner, error)
}

// Env is what the process hands every service it builds.
type Env struct {
	// Logger already carries service=<name>.
	Logger log.Logger
	Shared *Shared
	// Node identifies the machine the service runs on.
	Node string
	// Registry is where running instances are found (the proxy reads it).
	Registry registry.Registry
	// NATS is the process's handle on its embedded NATS server: the nats
	// service sets it while it runs, and natsconn.Connect prefers it to
	// the network. Nil when the process has none to share.
	NATS *natsconn.Embedded
	// NATSClient says how this process reaches NATS: the servers of
	// OCIS_NATS_URL and the client credentials, with Embedded set when
	// the nats service runs in this process. Nil when the process has no
	// NATS at all (a service run alone, a node without the nats service
	// and without OCIS_NATS_URL). A service that connects names its own
	// connection (Name) and passes its metrics registry.
	NATSClient *natsconn.Options
	// Tracing is the process's tracing (OCIS_TRACING_*), built once and
	// shut down by the process; nil when it is off. A service takes its
	// own with Tracing.For(name).
	Tracing *tracing.Tracing
	// Started is closed once the first start of every service of the
	// process has ended (or a bound has passed): work that no request
	// needs waits for it rather than compete with the start for the CPUs
	// (AfterStart). Nil for a service run alone: nothing to wait for.
	Started <-chan struct{}
}

// Catalogue is the family: every service the binary embeds.
type Catalogue []Descriptor

// Lookup returns the descriptor named name.
func (c Catalogue) Lookup(name string) (Descriptor, bool) {
	i := slices.IndexFunc(c, func(d Descriptor) bool { return d.Name == name })
	if i < 0 {
		return Descriptor{}, false
	}
	return c[i], true
}

// Names lists the services in catalogue order.
func (c Catalogue) Names() []string {
	names := make([]string, len(c))
	for i, d := range c {
		names[i] = d.Name
	}
	return names
}

// UnknownError names a service the catalogue does not hold, and the ones it
// does.
type UnknownError struct {
	Name  string
	Known []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown service %q; known services: %s", e.Name, strings.Join(e.Known, ", "))
}
