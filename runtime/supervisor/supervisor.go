// Package supervisor keeps each service of the family up "let it crash"
// style: it starts units once their dependencies run, restarts a failing
// one with backoff, gives up on one that keeps failing, and stops them all
// in reverse dependency order.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Policy is how the supervisor treats failing services.
type Policy struct {
	// BackoffMin is the wait before the first restart; each further
	// failure within the window doubles it, up to BackoffMax.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// MaxFailures failures within FailureWindow mark a service failed.
	MaxFailures   int
	FailureWindow time.Duration
	// StartTimeout bounds the time from Run to a 200 from /readyz.
	StartTimeout time.Duration
}

// DefaultPolicy restarts fast at first and gives up on a service that keeps
// failing for about twenty seconds, long enough for a briefly taken port to
// be freed.
func DefaultPolicy() Policy {
	return Policy{
		BackoffMin:    20 * time.Millisecond,
		BackoffMax:    10 * time.Second,
		MaxFailures:   10,
		FailureWindow: time.Minute,
		StartTimeout:  30 * time.Second,
	}
}

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
	Build  func() (service.Runner, error)
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
	probe    *http.Client

	units map[string]*unit
	order []string // start order: every unit after its dependencies

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
}

// New returns a supervisor of units, logging to logger with
// service=<unit> on every line about a unit, registering its state and
// restart metrics on reg, and recording running instances in instances. The units' dependencies must
// already be checked for unknown names and cycles (CheckGraph).
func New(logger log.Logger, policy Policy, node string, reg prometheus.Registerer, instances registry.Registry, units []Unit) *Supervisor {
	metrics := newStateMetrics(reg)
	s := &Supervisor{
		logger:   log.With(logger, "service", "runtime"),
		registry: instances,
		policy:   policy,
		node:     node,
		metrics:  metrics,
		probe:    &http.Client{Timeout: time.Second},
		units:    map[string]*unit{},
		changed:  make(chan struct{}),
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
	return s
}

// Run starts every unit and supervises them until ctx is done; then it stops
// them in reverse dependency order, a unit that fronts others before them,
// each draining up to its own shutdown timeout, and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range s.order {
		u := s.units[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(u.exited)
			u.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Statuses returns every unit's status in start order.
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

// Changed returns a channel closed at the next state change of any unit.
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// The errors of the control API.
var (
	ErrUnknownService = apierr.New(apierr.CodeNotFound, "runtime.unknown_service", "unknown service")
	ErrWrongState     = apierr.New(apierr.CodeConflict, "runtime.wrong_state", "service is")
	ErrShuttingDown   = apierr.New(apierr.CodeUnavailable, "runtime.shutting_down", "runtime is shutting down")
)

func (s *Supervisor) unit(name string) (*unit, error) {
	u, ok := s.units[name]
	if !ok {
		return nil, fmt.Errorf("%w %q; known services: %s", ErrUnknownService, name, strings.Join(s.order, ", "))
	}
	return u, nil
}

// Kill stops a service gracefully; it stays stopped until Run.
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
	// The unit accepted the command; wait for its verdict before settling.
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

type cmdKind int

const (
	cmdKill cmdKind = iota
	cmdRun
	cmdRestart
)

type command struct {
	kind  cmdKind
	reply chan error
}

// unit is a Unit under supervision. Only its own loop writes its state.
type unit struct {
	Unit
	sup    *Supervisor
	logger log.Logger
	cmds   chan command
	exited chan struct{}

	// Guarded by sup.mu.
	state    State
	since    time.Time
	restarts int
	lastErr  string
	addr     string

	// Owned by the loop.
	failures []time.Time
}

func (u *unit) statusLocked() Status {
	return Status{
		Name: u.Name, State: u.state, Node: u.sup.node, Addr: u.addr,
		Restarts: u.restarts, Since: u.since, LastError: u.lastErr,
	}
}

func (u *unit) setState(st State, cause error) {
	s := u.sup
	s.mu.Lock()
	prev := u.state
	u.state, u.since = st, time.Now()
	if cause != nil {
		u.lastErr = cause.Error()
	}
	// The gauge changes with the state, before anyone is told of it.
	s.metrics.set(u.Name, st)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	keyvals := []any{"msg", "state changed", "from", prev, "to", st}
	lvl := level.Info
	if cause != nil {
		keyvals = append(keyvals, "err", cause)
		lvl = level.Warn
	}
	lvl(u.logger).Log(keyvals...)
}

func (u *unit) getState() State {
	u.sup.mu.Lock()
	defer u.sup.mu.Unlock()
	return u.state
}

func (u *unit) conflict(what string) error {
	return fmt.Errorf("%w %s, cannot %s it", ErrWrongState, u.getState(), what)
}

// loop is the life of one unit: wait to be wanted, wait for dependencies,
// start, supervise, and on failure back off or give up.
func (u *unit) loop(ctx context.Context) {
	want := true
	for {
		if !want {
			if !u.idle(ctx) {
				return
			}
		}
		if !u.awaitDependencies(ctx) {
			// A kill while waiting leaves the unit stopped.
			want = u.getState() != StateStopped
			if ctx.Err() != nil {
				return
			}
			continue
		}
		outcome := u.runOnce(ctx)
		switch outcome.kind {
		case exitShutdown:
			return
		case exitKilled, exitClean:
			want = false
		case exitRestart:
			want = true
		case exitFailed:
			want = u.backoff(ctx, outcome.err)
			if ctx.Err() != nil {
				u.stopForShutdown(ctx)
				return
			}
		}
	}
}

// idle waits in stopped or failed for a run or restart; false means shutdown.
func (u *unit) idle(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			u.stopForShutdown(ctx)
			return false
		case c := <-u.cmds:
			if c.kind == cmdKill {
				c.reply <- u.conflict("kill")
				continue
			}
			u.failures = nil
			u.setState(StateStarting, nil)
			c.reply <- nil
			return true
		}
	}
}

// awaitDependencies waits, in starting, until every dependency runs.
func (u *unit) awaitDependencies(ctx context.Context) bool {
	if u.getState() != StateStarting {
		u.setState(StateStarting, nil)
	}
	for {
		changed := u.sup.Changed()
		if u.dependenciesRunning() {
			return true
		}
		select {
		case <-ctx.Done():
			u.stopForShutdown(ctx)
			return false
		case <-changed:
		case c := <-u.cmds:
			switch c.kind {
			case cmdKill:
				u.setState(StateStopped, nil)
				c.reply <- nil
				return false
			default:
				c.reply <- nil // already on its way up
			}
		}
	}
}

func (u *unit) dependenciesRunning() bool {
	u.sup.mu.Lock()
	defer u.sup.mu.Unlock()
	for _, d := range u.DependsOn {
		if dep, ok := u.sup.units[d]; ok && dep.state != StateRunning {
			return false
		}
	}
	return true
}

type exitKind int

const (
	exitClean    exitKind = iota // Run returned nil on its own
	exitFailed                   // Run failed, panicked or never became ready
	exitKilled                   // an operator stopped it
	exitRestart                  // an operator restarts it
	exitShutdown                 // the runtime is stopping
)

type exit struct {
	kind exitKind
	err  error
}

// runOnce starts one instance and supervises it until it exits or is told
// to stop.
func (u *unit) runOnce(ctx context.Context) exit {
	svc, err := u.Build()
	if err != nil {
		return exit{exitFailed, fmt.Errorf("build: %w", err)}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	up := make(chan service.Addrs, 1)
	go func() { done <- safeRun(runCtx, svc, up) }()

	// The instance is in the registry exactly while it is running.
	var registered *registry.Instance
	unregister := func() {
		if registered != nil {
			if err := u.sup.registry.Deregister(*registered); err != nil {
				level.Warn(u.logger).Log("msg", "deregister instance", "err", err)
			}
			registered = nil
		}
	}
	defer unregister()
	// stop takes the instance out of the registry, so no new request is
	// routed to it, then cancels it and waits for it to drain.
	stop := func() error {
		unregister()
		u.setState(StateStopping, nil)
		cancel()
		return <-done
	}

	startTimer := time.NewTimer(u.sup.policy.StartTimeout)
	defer startTimer.Stop()
	var (
		ready <-chan error
		addrs service.Addrs
	)
	probeCtx, stopProbe := context.WithCancel(runCtx)
	defer stopProbe()
	running := false
	for {
		select {
		case addrs = <-up:
			u.sup.mu.Lock()
			u.addr = addrs.HTTP
			u.sup.mu.Unlock()
			ready = u.sup.awaitReady(probeCtx, addrs.Debug)
		case err := <-ready:
			ready = nil
			if err != nil {
				_ = stop()
				return exit{exitFailed, err}
			}
			running = true
			startTimer.Stop()
			in := registry.Instance{Service: u.Name, Node: u.sup.node, Addr: service.Dialable(addrs.HTTP), Routes: u.Routes, Local: addrs.Handler}
			if err := u.sup.registry.Register(in); err != nil {
				_ = stop()
				return exit{exitFailed, fmt.Errorf("register instance: %w", err)}
			}
			registered = &in
			u.setState(StateRunning, nil)
		case <-startTimer.C:
			if !running {
				_ = stop()
				return exit{exitFailed, fmt.Errorf("not ready within start timeout %s", u.sup.policy.StartTimeout)}
			}
		case err := <-done:
			unregister()
			if err == nil && running {
				u.setState(StateStopped, nil)
				return exit{kind: exitClean}
			}
			if err == nil {
				err = errors.New("run returned before the service was ready")
			}
			return exit{exitFailed, err}
		case c := <-u.cmds:
			switch c.kind {
			case cmdRun:
				c.reply <- u.conflict("run")
			case cmdKill:
				err := stop()
				u.setState(StateStopped, err)
				c.reply <- nil
				return exit{kind: exitKilled}
			case cmdRestart:
				err := stop()
				u.setState(StateStarting, err)
				c.reply <- nil
				return exit{kind: exitRestart}
			}
		case <-ctx.Done():
			u.awaitDependents()
			err := stop()
			u.setState(StateStopped, err)
			return exit{kind: exitShutdown}
		}
	}
}

// safeRun runs svc and turns a panic into an error, so a panicking service
// is one more failure for the supervisor, not the end of the process.
func safeRun(ctx context.Context, svc service.Runner, up chan<- service.Addrs) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	once := sync.Once{}
	return svc.Run(ctx, func(a service.Addrs) {
		once.Do(func() { up <- a })
	})
}

// backoff records a failure and waits before the next start; it returns
// whether the unit should start again (false: failed, killed, or shutdown).
func (u *unit) backoff(ctx context.Context, cause error) bool {
	now := time.Now()
	recent := u.failures[:0]
	for _, t := range u.failures {
		if now.Sub(t) < u.sup.policy.FailureWindow {
			recent = append(recent, t)
		}
	}
	u.failures = append(recent, now)
	if len(u.failures) > u.sup.policy.MaxFailures {
		u.setState(StateFailed, fmt.Errorf("%d failures within %s, giving up until `ocis run %s`: %w",
			len(u.failures), u.sup.policy.FailureWindow, u.Name, cause))
		return false
	}

	u.sup.mu.Lock()
	u.restarts++
	u.sup.mu.Unlock()
	u.sup.metrics.restarted(u.Name)
	u.setState(StateBackoff, cause)

	timer := time.NewTimer(u.delay(len(u.failures)))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		case c := <-u.cmds:
			switch c.kind {
			case cmdKill:
				u.setState(StateStopped, nil)
				c.reply <- nil
				return false
			case cmdRestart:
				u.setState(StateStarting, nil)
				c.reply <- nil
				return true
			case cmdRun:
				c.reply <- u.conflict("run")
			}
		}
	}
}

// delay is the exponential backoff for the nth failure, with ±20% jitter so
// that services failing together do not restart in lockstep.
func (u *unit) delay(n int) time.Duration {
	p := u.sup.policy
	d := p.BackoffMin
	for i := 1; i < n && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// stopForShutdown marks a unit that was not running as stopped at shutdown,
// after its dependents and fronts, to keep the order visible in the logs.
func (u *unit) stopForShutdown(context.Context) {
	u.awaitDependents()
	if st := u.getState(); st != StateStopped && st != StateFailed {
		u.setState(StateStopped, nil)
	}
}

// awaitDependents waits until every unit that depends on u or fronts it
// has exited, so shutdown runs in reverse dependency order and an entry
// point stops accepting before the services behind it drain.
func (u *unit) awaitDependents() {
	for _, other := range u.sup.units {
		if slices.Contains(other.DependsOn, u.Name) || slices.Contains(other.Fronts, u.Name) {
			<-other.exited
		}
	}
}

// awaitReady polls a debug address's /readyz until it answers 200; the
// result arrives on the returned channel.
func (s *Supervisor) awaitReady(ctx context.Context, debugAddr string) <-chan error {
	out := make(chan error, 1)
	go func() {
		url := "http://" + debugAddr + "/readyz"
		wait := time.Millisecond
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				out <- err
				return
			}
			resp, err := s.probe.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					out <- nil
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, 100*time.Millisecond)
		}
	}()
	return out
}
