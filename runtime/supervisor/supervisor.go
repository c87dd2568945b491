// Package supervisor keeps each service of the family up "let it crash"
// style: it starts units once their dependencies run, restarts a failing
// one with backoff, gives up on one that keeps failing, and stops them all
// in reverse dependency order. A unit's states and the answer to each
// command are tables (state.go, commands.go).
package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Unit is one service the supervisor runs: its name, what it needs first,
// and how to build a fresh instance for each start.
type Unit struct {
	Name      string
	DependsOn []string
	// Fronts are units this one forwards requests to: at shutdown they
	// stop only after this one has (service.Descriptor.Fronts).
	Fronts []string
	// Routes are registered with the instance while it runs.
	Routes []string
	// StopTimeout is the service's own shutdown timeout; a stop is
	// abandoned past it and the policy's StopGrace. Zero means 30s, the
	// services' default.
	StopTimeout time.Duration
	Build       func() (service.Runner, error)
}

// Supervisor runs units "let it crash" style. Each unit has its own
// goroutine that alone changes its state, so one unit's crash loop never
// waits on another's, and commands to one unit are serialised by it.
type Supervisor struct {
	logger   log.Logger
	registry registry.Registry
	policy   Policy
	node     string
	metrics  *stateMetrics
	// ready waits until a started instance is ready to serve; tests
	// replace the probe.
	ready func(ctx context.Context, a service.Addrs) error

	units map[string]*unit
	order []string // the units as given, for listings

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	// unsettled counts the units whose first start has not ended yet;
	// started is closed when it reaches zero.
	unsettled int
	started   chan struct{}
}

// New returns a supervisor of units, logging to logger with service=<unit>
// on every line about a unit, registering its state and restart metrics on
// reg, and recording running instances in instances. The units'
// dependencies must already be checked for unknown names and cycles
// (CheckGraph).
func New(logger log.Logger, policy Policy, node string, reg prometheus.Registerer, instances registry.Registry, units []Unit) *Supervisor {
	metrics := newStateMetrics(reg)
	s := &Supervisor{
		logger:   log.With(logger, "service", "runtime"),
		registry: instances,
		policy:   policy,
		node:     node,
		metrics:  metrics,
		ready:    readyProbe(&http.Client{Timeout: time.Second}),
		units:    map[string]*unit{},
		changed:  make(chan struct{}),
		started:  make(chan struct{}),
	}
	for _, u := range units {
		s.units[u.Name] = &unit{
			Unit:   u,
			sup:    s,
			logger: log.With(logger, "service", u.Name, "component", "supervisor"),
			cmds:   make(chan command),
			exited: make(chan struct{}),
			state:  StateStopped,
			since:  time.Now(),
		}
		s.order = append(s.order, u.Name)
		metrics.set(u.Name, StateStopped)
	}
	s.unsettled = len(s.units)
	if s.unsettled == 0 {
		close(s.started)
	}
	return s
}

// Run starts every unit and supervises them until ctx is done; then it stops
// them in reverse dependency order, a unit that fronts others before them,
// each draining up to its own shutdown timeout, and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range s.order {
		u := s.units[name]
		wg.Go(func() {
			defer close(u.exited)
			u.loop(ctx)
		})
	}
	wg.Wait()
	return nil
}

// Statuses returns every unit's status in the order the units were given.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.order))
	for _, name := range s.order {
		out = append(out, s.units[name].statusLocked())
	}
	return out
}

// Status returns one unit's status.
func (s *Supervisor) Status(name string) (Status, error) {
	u, err := s.unit(name)
	if err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return u.statusLocked(), nil
}

// Ready reports whether every unit is running.
func (s *Supervisor) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.units {
		if u.state != StateRunning {
			return false
		}
	}
	return true
}

// Gatherer returns the metrics registry of unit name's instance while it
// runs, for readers in this process (the dashboard's request rates); nil
// when the unit is unknown, not running, or its service keeps none.
func (s *Supervisor) Gatherer(name string) prometheus.Gatherer {
	u, ok := s.units[name]
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.state != StateRunning {
		return nil
	}
	return u.gatherer
}

// Started returns a channel closed once the first start of every unit has
// ended, whichever way: running, or backoff or failed with its reason, or
// stopped by a command or the shutdown. What only needs the family to be
// done starting (work that would compete with the start for the CPUs)
// waits for it; it never waits on a service that keeps failing.
func (s *Supervisor) Started() <-chan struct{} {
	return s.started
}

// Changed returns a channel closed at the next state change of any unit.
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Supervisor) unit(name string) (*unit, error) {
	u, ok := s.units[name]
	if !ok {
		return nil, fmt.Errorf("%w %q; known services: %s", ErrUnknownService, name, strings.Join(s.order, ", "))
	}
	return u, nil
}

// Kill stops a service gracefully; it stays stopped until Start.
func (s *Supervisor) Kill(ctx context.Context, name string) (Status, error) {
	return s.command(ctx, name, cmdKill)
}

// Start starts a stopped or failed service and waits until it is running or
// its start attempt has failed.
func (s *Supervisor) Start(ctx context.Context, name string) (Status, error) {
	return s.command(ctx, name, cmdRun)
}

// Restart stops a service, if it runs, and starts it again.
func (s *Supervisor) Restart(ctx context.Context, name string) (Status, error) {
	return s.command(ctx, name, cmdRestart)
}

// command hands kind to the unit's loop, waits for its verdict and, for a
// start, for the start's outcome.
func (s *Supervisor) command(ctx context.Context, name string, kind cmdKind) (Status, error) {
	u, err := s.unit(name)
	if err != nil {
		return Status{}, err
	}
	c := command{kind: kind, reply: make(chan error, 1)}
	select {
	case u.cmds <- c:
	case <-u.exited:
		return Status{}, ErrShuttingDown
	case <-ctx.Done():
		return Status{}, fmt.Errorf("%w: %v", apierr.ErrUnavailable, ctx.Err())
	}
	select {
	case err = <-c.reply:
	case <-ctx.Done():
		return Status{}, fmt.Errorf("%w: %v", apierr.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		return Status{}, err
	}
	if kind != cmdKill {
		if err := s.awaitSettled(ctx, u); err != nil {
			return Status{}, err
		}
	}
	return s.Status(name)
}

// awaitSettled waits until u has left starting (or the wait is cut short).
func (s *Supervisor) awaitSettled(ctx context.Context, u *unit) error {
	for {
		s.mu.Lock()
		st, changed := u.state, s.changed
		s.mu.Unlock()
		if st != StateStarting {
			return nil
		}
		select {
		case <-changed:
		case <-u.exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", apierr.ErrUnavailable, ctx.Err())
		}
	}
}
