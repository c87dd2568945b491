package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/service"
)

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
	errAt    time.Time
	addr     string
	debug    string
	gatherer prometheus.Gatherer // the running instance's metrics
	settled  bool                // its first start has ended

	// Owned by the loop.
	failures []time.Time
}

// loop is the life of one unit: it starts at once, then each turn runs the
// handler of the state the unit is in until the handler moves it on. When
// ctx is done it stops the unit after those that depend on it or front it.
func (u *unit) loop(ctx context.Context) {
	u.switchState(StateStarting, nil)
	for ctx.Err() == nil {
		var err error
		switch u.getState() {
		case StateStopped, StateFailed:
			await[struct{}](ctx, u, nil) // until an operator's run
		case StateBackoff:
			wait := time.NewTimer(u.sup.policy.delay(len(u.failures)))
			if await(ctx, u, wait.C) {
				u.switchState(StateStarting, nil)
			}
			wait.Stop()
		case StateStarting:
			if u.awaitDependencies(ctx) {
				err = u.runOnce(ctx)
			}
		}
		if err != nil {
			u.fail(err)
		}
	}
	u.awaitDependents()
	if st := u.getState(); st != StateStopped && st != StateFailed {
		u.switchState(StateStopped, nil)
	}
}

// await waits between instances for event, answering commands meanwhile.
// It reports whether event came; false means a command moved the unit or
// ctx is done.
func await[T any](ctx context.Context, u *unit, event <-chan T) bool {
	for {
		select {
		case <-event:
			return true
		case <-ctx.Done():
			return false
		case c := <-u.cmds:
			if u.handle(c, nil) {
				return false
			}
		}
	}
}

// runOnce starts one instance and supervises it until it ends by itself, a
// command stops it, or the shutdown does. It returns a failure for the loop
// to count; every other outcome is already in the unit's state.
func (u *unit) runOnce(ctx context.Context) error {
	in, err := u.start()
	if err != nil {
		return err
	}
	defer in.cancel()
	timeout := time.NewTimer(u.sup.policy.StartTimeout)
	defer timeout.Stop()
	for {
		select {
		case err := <-in.ready:
			if err == nil {
				err = in.register()
			}
			if err != nil {
				return u.discard(in, err)
			}
			timeout.Stop()
			u.switchState(StateRunning, nil)
		case <-timeout.C:
			return u.discard(in, fmt.Errorf("not ready within start timeout %s", u.sup.policy.StartTimeout))
		case err := <-in.done:
			return u.ended(in, err)
		case c := <-u.cmds:
			if u.handle(c, in) {
				return nil
			}
		case <-ctx.Done():
			u.awaitDependents()
			u.stop(in, StateStopped)
			return nil
		}
	}
}

// ended handles Run returning by itself: nil once the service was ready is
// its choice to end (stopped, not restarted); anything else is a failure.
func (u *unit) ended(in *instance, err error) error {
	in.deregister()
	if err == nil && u.getState() == StateRunning {
		u.switchState(StateStopped, nil)
		return nil
	}
	if err == nil {
		err = errors.New("run returned before the service was ready")
	}
	return err
}

// discard stops an instance that failed to start and returns cause, the
// failure the loop counts; an abandoned stop has marked the unit failed
// already, so there is nothing left to count.
func (u *unit) discard(in *instance, cause error) error {
	if err := in.stop(); errors.Is(err, errAbandoned) {
		u.abandon(err)
		return nil
	}
	return cause
}

// stop stops in, if there is one, and moves the unit to then; a stop
// abandoned past its bound moves it to failed instead.
func (u *unit) stop(in *instance, then State) {
	var err error
	if in != nil {
		err = in.stop()
	}
	switch {
	case errors.Is(err, errAbandoned):
		u.abandon(err)
	case u.getState() != then:
		u.switchState(then, err)
	}
}

// abandon gives up on an instance that would not stop: its goroutine is
// left behind, and the unit is failed until an operator runs it again.
func (u *unit) abandon(err error) {
	level.Error(u.logger).Log("msg", "service did not stop in time, abandoned", "err", err)
	u.switchState(StateFailed, err)
}

// fail records a failure of the current start and moves the unit to
// backoff, or to failed once more than MaxFailures fall within the window.
func (u *unit) fail(cause error) {
	var berr *buildError
	if errors.As(cause, &berr) {
		u.switchState(StateFailed, fmt.Errorf("%w; not retried: fix the setting, then `ocis restart %s`", cause, u.Name))
		return
	}
	p, now := u.sup.policy, time.Now()
	u.failures = slices.DeleteFunc(u.failures, func(t time.Time) bool { return now.Sub(t) >= p.FailureWindow })
	u.failures = append(u.failures, now)
	if len(u.failures) > p.MaxFailures {
		u.switchState(StateFailed, fmt.Errorf("%d failures within %s, giving up until `ocis run %s`: %w",
			len(u.failures), p.FailureWindow, u.Name, cause))
		return
	}
	u.sup.mu.Lock()
	u.restarts++
	u.sup.mu.Unlock()
	u.sup.metrics.restarted(u.Name)
	u.switchState(StateBackoff, cause)
}

// awaitDependencies waits until every dependency that runs on this node is
// running; a dependency known but not supervised here is taken to run
// elsewhere. False means a command moved the unit or ctx is done.
func (u *unit) awaitDependencies(ctx context.Context) bool {
	for {
		changed := u.sup.Changed()
		if u.dependenciesRunning() {
			return true
		}
		if !await(ctx, u, changed) {
			return false
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

// switchState moves the unit to st, checked against the transition table,
// records cause as its last error, sets the state gauge, wakes everyone
// waiting for a change, and logs the move.
func (u *unit) switchState(to State, cause error) {
	s := u.sup
	s.mu.Lock()
	from := u.state
	if !canSwitch(from, to) {
		s.mu.Unlock()
		panic(errInvalidTransition{from, to})
	}
	u.state, u.since = to, time.Now()
	if cause != nil {
		u.lastErr, u.errAt = cause.Error(), u.since
	}
	if from == StateStarting && !u.settled {
		u.settled = true
		if s.unsettled--; s.unsettled == 0 {
			close(s.started)
		}
	}
	// The gauge changes with the state, before anyone is told of it.
	s.metrics.set(u.Name, to)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	keyvals := []any{"msg", "state changed", "from", from, "to", to}
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

func (u *unit) setAddrs(a service.Addrs) {
	u.sup.mu.Lock()
	defer u.sup.mu.Unlock()
	u.addr, u.debug, u.gatherer = a.HTTP, a.Debug, a.Metrics
}

func (u *unit) statusLocked() Status {
	return Status{
		Name: u.Name, State: u.state, Node: u.sup.node, Addr: u.addr,
		Restarts: u.restarts, Since: u.since, LastError: u.lastErr,
		LastErrorAt: u.errAt, DebugAddr: u.debug,
	}
}
