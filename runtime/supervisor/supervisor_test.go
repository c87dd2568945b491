package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// fakeSvc is a real service for the supervisor to run: it listens on loopback
// and does what its behaviour says on each start.
type fakeSvc struct {
	starts atomic.Int32
	// behave decides, for the nth start (from 1), what Run does once its
	// listeners are open: nil serves until cancelled.
	behave func(n int) error
	ready  func() bool
	onStop func()
	// onCancel, when set, is called as soon as a run is told to stop.
	onCancel func()
}

var errCrash = errors.New("crash")

func (p *fakeSvc) Build() (service.Runner, error) { return p, nil }

func (p *fakeSvc) Run(ctx context.Context, up func(service.Addrs)) error {
	n := int(p.starts.Add(1))
	if p.behave != nil {
		if err := p.behave(n); err != nil {
			if errors.Is(err, errPanic) {
				panic("probe panics on purpose")
			}
			return err
		}
	}
	told := make(chan struct{})
	if p.onCancel != nil {
		go func() {
			defer close(told)
			<-ctx.Done()
			p.onCancel()
		}()
	}
	base := service.Base{HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", ShutdownTimeout: time.Second}
	err := service.Serve(ctx, up, service.Parts{
		Logger:   log.NewNopLogger(),
		Base:     &base,
		Handler:  http.NotFoundHandler(),
		Registry: prometheus.NewRegistry(),
		Ready:    p.ready,
	})
	if p.onCancel != nil && ctx.Err() != nil {
		<-told
	}
	if p.onStop != nil {
		p.onStop()
	}
	return err
}

var errPanic = errors.New("panic please")

func testPolicy() Policy {
	return Policy{
		BackoffMin:    time.Millisecond,
		BackoffMax:    5 * time.Millisecond,
		MaxFailures:   3,
		FailureWindow: time.Minute,
		StartTimeout:  5 * time.Second,
	}
}

// supervise runs a supervisor of units until the test ends.
func supervise(t *testing.T, policy Policy, units ...Unit) (*Supervisor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sup := New(log.NewNopLogger(), policy, "test-node", reg, registry.NewMemory(), units)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("supervisor did not stop within 20s")
		}
	})
	return sup, reg
}

// awaitState waits for a unit to reach want, via the change notifications.
func awaitState(t *testing.T, sup *Supervisor, name string, want State) Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		changed := sup.Changed()
		st, err := sup.Status(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return st
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: state %s (last error %q), want %s", name, st.State, st.LastError, want)
		}
	}
}

func unitOf(name string, p *fakeSvc, deps ...string) Unit {
	return Unit{Name: name, DependsOn: deps, Build: p.Build}
}

func TestCrashIsRestarted(t *testing.T) {
	tests := []struct {
		name      string
		behave    func(n int) error
		wantError string
	}{
		{"run returns an error", func(n int) error {
			if n == 1 {
				return errCrash
			}
			return nil
		}, "crash"},
		{"run panics", func(n int) error {
			if n == 1 {
				return errPanic
			}
			return nil
		}, "panic: probe panics on purpose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeSvc{behave: tt.behave}
			sup, _ := supervise(t, testPolicy(), unitOf("svc", p))
			st := awaitState(t, sup, "svc", StateRunning)
			if st.Restarts != 1 || p.starts.Load() != 2 {
				t.Errorf("restarts = %d, starts = %d; want 1 and 2", st.Restarts, p.starts.Load())
			}
			if !strings.HasPrefix(st.LastError, tt.wantError) {
				t.Errorf("last error = %q, want it to start with %q", st.LastError, tt.wantError)
			}
			if got := testutil.ToFloat64(sup.metrics.restarts.WithLabelValues("svc")); got != 1 {
				t.Errorf("ocis_service_restarts_total = %v, want 1", got)
			}
			if got := testutil.ToFloat64(sup.metrics.state.WithLabelValues("svc", "running")); got != 1 {
				t.Errorf("ocis_service_state{state=running} = %v, want 1", got)
			}
		})
	}
}

func TestCrashLoopFailsThenRunRevives(t *testing.T) {
	var healthy atomic.Bool
	p := &fakeSvc{behave: func(int) error {
		if healthy.Load() {
			return nil
		}
		return errCrash
	}}
	sup, _ := supervise(t, testPolicy(), unitOf("svc", p))
	st := awaitState(t, sup, "svc", StateFailed)
	if got := p.starts.Load(); got != int32(testPolicy().MaxFailures+1) {
		t.Errorf("starts before failed = %d, want %d", got, testPolicy().MaxFailures+1)
	}
	if st.LastError == "" {
		t.Error("failed service has no last error")
	}
	// Failed is left alone: no further starts without an operator.
	if _, err := sup.Kill(context.Background(), "svc"); !errors.Is(err, ErrWrongState) {
		t.Errorf("kill of a failed service: %v, want conflict", err)
	}
	healthy.Store(true)
	st, err := sup.Start(context.Background(), "svc")
	if err != nil || st.State != StateRunning {
		t.Fatalf("run after fix: %+v, %v; want running", st, err)
	}
}

func TestCleanReturnIsStoppedNotRestarted(t *testing.T) {
	// A service that ends on its own after becoming ready.
	quit := make(chan struct{})
	p2 := &cleanExit{quit: quit}
	sup, _ := supervise(t, testPolicy(), Unit{Name: "clean", Build: func() (service.Runner, error) { return p2, nil }})
	awaitState(t, sup, "clean", StateRunning)
	close(quit)
	st := awaitState(t, sup, "clean", StateStopped)
	if st.Restarts != 0 || p2.starts.Load() != 1 {
		t.Errorf("restarts = %d, starts = %d; want 0 and 1", st.Restarts, p2.starts.Load())
	}
}

// cleanExit serves until quit is closed, then returns nil by itself.
type cleanExit struct {
	quit   chan struct{}
	starts atomic.Int32
}

func (c *cleanExit) Run(ctx context.Context, up func(service.Addrs)) error {
	c.starts.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.quit:
		case <-ctx.Done():
		}
		cancel()
	}()
	return (&fakeSvc{}).Run(ctx, up)
}

// TestCrashLoopDoesNotDisturbOthers runs a service that fails at every start
// beside healthy ones, and checks that those start at once and never leave
// running.
func TestCrashLoopDoesNotDisturbOthers(t *testing.T) {
	looping := &fakeSvc{behave: func(int) error { return errCrash }}
	policy := testPolicy()
	policy.MaxFailures = 1000
	units := []Unit{unitOf("looping", looping)}
	healthy := make([]*fakeSvc, 5)
	for i := range healthy {
		healthy[i] = &fakeSvc{}
		units = append(units, unitOf(fmt.Sprintf("healthy%d", i), healthy[i]))
	}
	sup, _ := supervise(t, policy, units...)
	for i := range healthy {
		awaitState(t, sup, fmt.Sprintf("healthy%d", i), StateRunning)
	}
	// Let the loop turn over many times, then check nobody else moved.
	waitUntil(t, func() bool { return looping.starts.Load() > 50 })
	for i, h := range healthy {
		st, _ := sup.Status(fmt.Sprintf("healthy%d", i))
		if st.State != StateRunning || h.starts.Load() != 1 {
			t.Errorf("healthy%d: %s after %d starts; want running after 1", i, st.State, h.starts.Load())
		}
	}
	// Commands to a healthy unit are answered while the loop goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := sup.Restart(ctx, "healthy0"); err != nil {
		t.Errorf("restart healthy0 beside a crash loop: %v", err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		<-time.After(time.Millisecond)
	}
}

func TestDependenciesOrderStartAndStop(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(what string) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, what)
		}
	}
	var baseReady atomic.Bool
	base := &fakeSvc{ready: baseReady.Load, onStop: record("base stopped")}
	app := &fakeSvc{onStop: record("app stopped")}
	reg := prometheus.NewRegistry()
	sup := New(log.NewNopLogger(), testPolicy(), "n", reg, registry.NewMemory(),
		[]Unit{unitOf("app", app, "base"), unitOf("base", base)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	awaitStarts(t, base)
	if app.starts.Load() != 0 {
		t.Fatal("app started before its dependency was running")
	}
	baseReady.Store(true)
	awaitState(t, sup, "app", StateRunning)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := "app stopped,base stopped"; strings.Join(order, ",") != want {
		t.Errorf("stop order = %v, want %s", order, want)
	}
}

// TestFrontsOrdersStopOnly checks a unit that fronts others: it starts and
// keeps running whatever they do, and at shutdown it has stopped before any
// of them is told to stop.
func TestFrontsOrdersStopOnly(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(what string) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, what)
		}
	}
	var appReady atomic.Bool
	entry := &fakeSvc{onStop: record("entry stopped")}
	app := &fakeSvc{ready: appReady.Load, onCancel: record("app told to stop")}
	other := &fakeSvc{onCancel: record("other told to stop")}
	reg := prometheus.NewRegistry()
	sup := New(log.NewNopLogger(), testPolicy(), "n", reg, registry.NewMemory(), []Unit{
		{Name: "entry", Fronts: []string{"app", "other"}, Build: entry.Build},
		unitOf("app", app), unitOf("other", other),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	// The entry point starts while what it fronts is not ready yet.
	awaitState(t, sup, "entry", StateRunning)
	if st, _ := sup.Status("app"); st.State != StateStarting {
		t.Fatalf("app is %s, want starting (not ready)", st.State)
	}
	appReady.Store(true)
	awaitState(t, sup, "app", StateRunning)
	awaitState(t, sup, "other", StateRunning)
	// Killing a fronted unit leaves the entry point running.
	if _, err := sup.Kill(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	if st, _ := sup.Status("entry"); st.State != StateRunning {
		t.Errorf("entry is %s after other was killed, want running", st.State)
	}
	mu.Lock()
	order = nil // forget the kill's cancellation
	mu.Unlock()

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "entry stopped,app told to stop"; strings.Join(order, ",") != want {
		t.Errorf("stop order = %v, want %s", order, want)
	}
}

func awaitStarts(t *testing.T, p *fakeSvc) {
	t.Helper()
	waitUntil(t, func() bool { return p.starts.Load() > 0 })
}

func TestControlConflictsAndUnknown(t *testing.T) {
	sup, _ := supervise(t, testPolicy(), unitOf("svc", &fakeSvc{}))
	awaitState(t, sup, "svc", StateRunning)
	ctx := context.Background()

	if _, err := sup.Start(ctx, "svc"); !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), "running") {
		t.Errorf("run on running: %v, want conflict naming the state", err)
	}
	if st, err := sup.Kill(ctx, "svc"); err != nil || st.State != StateStopped {
		t.Errorf("kill: %+v, %v; want stopped", st, err)
	}
	if _, err := sup.Kill(ctx, "svc"); !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("kill on stopped: %v, want conflict naming the state", err)
	}
	if st, err := sup.Restart(ctx, "svc"); err != nil || st.State != StateRunning {
		t.Errorf("restart of stopped: %+v, %v; want running", st, err)
	}
	_, err := sup.Kill(ctx, "nosuch")
	if !errors.Is(err, ErrUnknownService) || apierr.CodeOf(err) != apierr.CodeNotFound || !strings.Contains(err.Error(), "svc") {
		t.Errorf("kill unknown: %v, want not_found naming the known services", err)
	}
}

// TestConcurrentCommands races kill, run and restart from many goroutines;
// every call must return, and the final state must match what the last
// command says.
func TestConcurrentCommands(t *testing.T) {
	sup, _ := supervise(t, testPolicy(), unitOf("a", &fakeSvc{}), unitOf("b", &fakeSvc{}))
	awaitState(t, sup, "a", StateRunning)
	awaitState(t, sup, "b", StateRunning)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[i%2]
			for j := range 5 {
				var err error
				switch (i + j) % 3 {
				case 0:
					_, err = sup.Kill(ctx, name)
				case 1:
					_, err = sup.Start(ctx, name)
				case 2:
					_, err = sup.Restart(ctx, name)
				}
				if err != nil && !errors.Is(err, ErrWrongState) {
					t.Errorf("%s: unexpected error %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("commands did not all return: deadlock")
	}
	for _, name := range []string{"a", "b"} {
		st, err := sup.Restart(ctx, name)
		if err != nil || st.State != StateRunning {
			t.Errorf("%s after the race: restart gives %+v, %v; want running", name, st, err)
		}
		st, err = sup.Kill(ctx, name)
		if err != nil || st.State != StateStopped {
			t.Errorf("%s after the race: kill gives %+v, %v; want stopped", name, st, err)
		}
	}
}

func TestBackoffDelayGrowsAndIsCapped(t *testing.T) {
	p := Policy{BackoffMin: 20 * time.Millisecond, BackoffMax: 10 * time.Second}
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 16 * time.Millisecond, 24 * time.Millisecond},
		{2, 32 * time.Millisecond, 48 * time.Millisecond},
		{5, 256 * time.Millisecond, 384 * time.Millisecond},
		{100, 8 * time.Second, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			for range 50 {
				if got := p.delay(tt.n); got < tt.min || got > tt.max {
					t.Fatalf("delay(%d) = %s, want within [%s, %s]", tt.n, got, tt.min, tt.max)
				}
			}
		})
	}
}

// TestRegistryFollowsRunning checks an instance is in the registry exactly
// while its service is running.
func TestRegistryFollowsRunning(t *testing.T) {
	instances := registry.NewMemory()
	sup := New(log.NewNopLogger(), testPolicy(), "node-a", prometheus.NewRegistry(), instances,
		[]Unit{{Name: "svc", Routes: []string{"/api/v1/svc"}, Build: (&fakeSvc{}).Build}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); <-done }()

	st := awaitState(t, sup, "svc", StateRunning)
	got := instances.Table().Instances("svc")
	if len(got) != 1 || got[0].Node != "node-a" || got[0].Addr != st.Addr {
		t.Fatalf("registered = %+v, want one instance at %s on node-a", got, st.Addr)
	}
	if owner, _ := instances.Table().Owner("/api/v1/svc/x"); owner != "svc" {
		t.Errorf("route owner = %q, want svc", owner)
	}
	if _, err := sup.Kill(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	if got := instances.Table().Instances("svc"); len(got) != 0 {
		t.Errorf("after kill: %+v still registered", got)
	}
}

// TestTransitionTable checks the tables agree: every answer of the command
// table is a move the transition table allows, and a move outside it is
// refused loudly.
func TestTransitionTable(t *testing.T) {
	// paths are the moves an action makes, with an instance running and
	// without one; a starting unit may be either.
	paths := func(st State, act action) [][]State {
		var out [][]State
		withInstance := st == StateRunning || st == StateStarting
		without := st != StateRunning
		switch act {
		case start:
			out = append(out, []State{st, StateStarting})
		case stop:
			if withInstance {
				out = append(out, []State{st, StateStopping, StateStopped})
			}
			if without {
				out = append(out, []State{st, StateStopped})
			}
		case restart:
			if withInstance {
				out = append(out, []State{st, StateStopping, StateStarting})
			}
			if without && st != StateStarting {
				out = append(out, []State{st, StateStarting})
			}
		}
		return out
	}
	for st, answers := range commandTable() {
		for kind, act := range answers {
			for _, path := range paths(st, act) {
				for i := 1; i < len(path); i++ {
					if !canSwitch(path[i-1], path[i]) {
						t.Errorf("%s in %s moves %s -> %s, which the transition table does not allow", cmdKind(kind), st, path[i-1], path[i])
					}
				}
			}
		}
	}
	for _, st := range States() {
		if _, ok := transitions()[st]; !ok {
			t.Errorf("state %s has no row in the transition table", st)
		}
	}

	sup := New(log.NewNopLogger(), testPolicy(), "n", nil, registry.NewMemory(), []Unit{{Name: "svc"}})
	defer func() {
		if r := recover(); r == nil {
			t.Error("stopped -> running did not panic")
		}
		if st, _ := sup.Status("svc"); st.State != StateStopped {
			t.Errorf("after a refused move the state is %s, want stopped", st.State)
		}
	}()
	sup.units["svc"].switchState(StateRunning, nil)
}

// TestStartedOnceEveryFirstStartEnded checks that Started waits for a unit
// still on its way up, and not for one that failed: each first start has
// to end, whichever way.
func TestStartedOnceEveryFirstStartEnded(t *testing.T) {
	gate := make(chan struct{})
	slow := &fakeSvc{ready: func() bool {
		select {
		case <-gate:
			return true
		default:
			return false
		}
	}}
	crash := &fakeSvc{behave: func(int) error { return errCrash }}
	policy := testPolicy()
	policy.BackoffMin, policy.BackoffMax = time.Hour, time.Hour // one failure, then a long wait
	sup, _ := supervise(t, policy, unitOf("slow", slow), unitOf("crash", crash), unitOf("fine", &fakeSvc{}))
	awaitState(t, sup, "fine", StateRunning)
	awaitState(t, sup, "crash", StateBackoff)
	select {
	case <-sup.Started():
		t.Fatal("started while a unit was still starting")
	default:
	}
	close(gate)
	select {
	case <-sup.Started():
	case <-time.After(10 * time.Second):
		t.Fatal("not started after every unit's first start ended")
	}
	if st, _ := sup.Status("slow"); st.State != StateRunning {
		t.Fatalf("slow is %s once started, want running", st.State)
	}
}
