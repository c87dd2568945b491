package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// The tests in this file run in a synctest bubble: time is fake and moves
// only when every goroutine waits, so backoffs, windows and timeouts of
// seconds or minutes take no time and land at exact instants.

// scripted is a service without listeners: its nth start does what run
// says, calling up once it "listens".
type scripted struct {
	name string
	run  func(ctx context.Context, n int, up func()) error

	mu     sync.Mutex
	starts []time.Time
}

func (s *scripted) Build() (service.Runner, error) { return s, nil }

func (s *scripted) Run(ctx context.Context, up func(service.Addrs)) error {
	s.mu.Lock()
	s.starts = append(s.starts, time.Now())
	n := len(s.starts)
	s.mu.Unlock()
	return s.run(ctx, n, func() { up(service.Addrs{HTTP: "127.0.0.1:9", Debug: s.name}) })
}

func (s *scripted) startTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.starts...)
}

// serve listens and serves until told to stop.
func serve(ctx context.Context, _ int, up func()) error {
	up()
	<-ctx.Done()
	return nil
}

// crash fails every start before it listens.
func crash(context.Context, int, func()) error { return errCrash }

// bubble is a supervisor running in a synctest bubble. A unit whose name
// has a gate is not ready until the gate is closed.
type bubble struct {
	t     *testing.T
	sup   *Supervisor
	gates map[string]chan struct{}
	stop  func() // cancels the supervisor and waits for its Run
}

func runBubble(t *testing.T, policy Policy, gates map[string]chan struct{}, units ...Unit) *bubble {
	t.Helper()
	sup := New(log.NewNopLogger(), policy, "n", prometheus.NewRegistry(), registry.NewMemory(), units)
	sup.ready = func(ctx context.Context, a service.Addrs) error {
		select {
		case <-gates[a.Debug]: // a nil gate blocks forever; an absent one is nil
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	for _, u := range units {
		if _, ok := gates[u.Name]; !ok {
			if gates == nil {
				gates = map[string]chan struct{}{}
			}
			open := make(chan struct{})
			close(open)
			gates[u.Name] = open
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sup.Run(ctx)
	}()
	b := &bubble{t: t, sup: sup, gates: gates}
	b.stop = func() {
		cancel()
		<-done
	}
	synctest.Wait()
	return b
}

func (b *bubble) state(name string) Status {
	b.t.Helper()
	st, err := b.sup.Status(name)
	if err != nil {
		b.t.Fatal(err)
	}
	return st
}

func timerPolicy() Policy {
	return Policy{
		BackoffMin:    time.Second,
		BackoffMax:    4 * time.Second,
		MaxFailures:   100,
		FailureWindow: time.Hour,
		StartTimeout:  30 * time.Second,
		StopGrace:     time.Second,
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &scripted{name: "svc", run: crash}
		b := runBubble(t, timerPolicy(), nil, Unit{Name: "svc", Build: svc.Build})
		if st := b.state("svc"); st.State != StateBackoff || st.Restarts != 1 {
			t.Errorf("after the first crash: %s with %d restarts, want backoff with 1", st.State, st.Restarts)
		}
		time.Sleep(30 * time.Second)
		b.stop()

		starts := svc.startTimes()
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
		if len(starts) <= len(want) {
			t.Fatalf("%d starts in 30s, want more than %d", len(starts), len(want))
		}
		for i, w := range want {
			got := starts[i+1].Sub(starts[i])
			if lo, hi := w*8/10, w*12/10; got < lo || got > hi {
				t.Errorf("wait before start %d = %s, want %s ± 20%%", i+2, got, w)
			}
		}
	})
}

func TestFailureWindow(t *testing.T) {
	policy := timerPolicy()
	policy.MaxFailures = 2
	policy.FailureWindow = 10 * time.Second
	policy.BackoffMax = time.Second

	t.Run("failures close together give up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc := &scripted{name: "svc", run: crash}
			b := runBubble(t, policy, nil, Unit{Name: "svc", Build: svc.Build})
			defer b.stop()
			time.Sleep(time.Minute)
			st := b.state("svc")
			if st.State != StateFailed || len(svc.startTimes()) != 3 {
				t.Errorf("%s after %d starts, want failed after 3", st.State, len(svc.startTimes()))
			}
			if !strings.Contains(st.LastError, "3 failures within 10s") {
				t.Errorf("last error %q, want the count and the window", st.LastError)
			}
		})
	})

	t.Run("failures spread out are forgiven", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			crashNow := make(chan struct{})
			svc := &scripted{name: "svc", run: func(ctx context.Context, n int, up func()) error {
				switch n {
				case 1, 2: // two quick failures
					return errCrash
				case 3: // then up for a while, until told to crash
					up()
					select {
					case <-crashNow:
						return errCrash
					case <-ctx.Done():
						return nil
					}
				}
				return serve(ctx, n, up)
			}}
			b := runBubble(t, policy, nil, Unit{Name: "svc", Build: svc.Build})
			defer b.stop()
			time.Sleep(5 * time.Second)
			if st := b.state("svc"); st.State != StateRunning || st.Restarts != 2 {
				t.Fatalf("%s with %d restarts, want running after 2", st.State, st.Restarts)
			}
			// The first two failures leave the window; a third one is
			// then the only recent failure.
			time.Sleep(20 * time.Second)
			close(crashNow)
			synctest.Wait()
			if st := b.state("svc"); st.State != StateBackoff {
				t.Fatalf("%s after a crash with old failures out of the window, want backoff", st.State)
			}
			time.Sleep(2 * time.Second)
			if st := b.state("svc"); st.State != StateRunning || st.Restarts != 3 {
				t.Errorf("%s with %d restarts, want running after 3", st.State, st.Restarts)
			}
		})
	})
}

func TestStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := timerPolicy()
		policy.MaxFailures = 0
		begin := time.Now()
		svc := &scripted{name: "slow", run: serve}
		// The gate is never opened: the service never becomes ready.
		b := runBubble(t, policy, map[string]chan struct{}{"slow": make(chan struct{})}, Unit{Name: "slow", Build: svc.Build})
		defer b.stop()

		time.Sleep(policy.StartTimeout - time.Millisecond)
		if st := b.state("slow"); st.State != StateStarting {
			t.Fatalf("just before the start timeout: %s, want starting", st.State)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		st := b.state("slow")
		if st.State != StateFailed || !strings.Contains(st.LastError, "not ready within start timeout 30s") {
			t.Errorf("at the start timeout: %s (%q), want failed for the timeout", st.State, st.LastError)
		}
		if got := st.Since.Sub(begin); got != policy.StartTimeout {
			t.Errorf("failed %s after the start, want exactly %s", got, policy.StartTimeout)
		}
	})
}

// stuck serves, and once told to stop keeps running until release is
// closed: a service whose drain hangs.
func stuck(release <-chan struct{}) func(ctx context.Context, n int, up func()) error {
	return func(ctx context.Context, n int, up func()) error {
		up()
		<-ctx.Done()
		<-release
		return nil
	}
}

func TestStopIsBounded(t *testing.T) {
	const shutdownTimeout = 2 * time.Second
	policy := timerPolicy()
	bound := shutdownTimeout + policy.StopGrace

	t.Run("kill", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			hung := &scripted{name: "hung", run: stuck(release)}
			other := &scripted{name: "other", run: serve}
			b := runBubble(t, policy, nil,
				Unit{Name: "hung", StopTimeout: shutdownTimeout, Build: hung.Build},
				Unit{Name: "other", Build: other.Build})
			defer b.stop()

			begin := time.Now()
			st, err := b.sup.Kill(context.Background(), "hung")
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(begin); took != bound {
				t.Errorf("kill took %s, want the bound %s", took, bound)
			}
			if st.State != StateFailed || !strings.Contains(st.LastError, "did not stop in time") {
				t.Errorf("after the bound: %s (%q), want failed and abandoned", st.State, st.LastError)
			}
			if st := b.state("other"); st.State != StateRunning {
				t.Errorf("other is %s, want running", st.State)
			}
			// An operator can start it again; the new instance is
			// independent of the one left behind.
			if st, err := b.sup.Start(context.Background(), "hung"); err != nil || st.State != StateRunning {
				t.Errorf("run after an abandoned stop: %+v, %v; want running", st, err)
			}
		})
	})

	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			hung := &scripted{name: "hung", run: stuck(release)}
			app := &scripted{name: "app", run: serve}
			b := runBubble(t, policy, nil,
				Unit{Name: "hung", StopTimeout: shutdownTimeout, Build: hung.Build},
				Unit{Name: "app", DependsOn: []string{"hung"}, Build: app.Build})
			if st := b.state("app"); st.State != StateRunning {
				t.Fatalf("app is %s, want running", st.State)
			}
			begin := time.Now()
			b.stop()
			if took := time.Since(begin); took != bound {
				t.Errorf("shutdown took %s, want the bound %s", took, bound)
			}
			if st := b.state("hung"); st.State != StateFailed {
				t.Errorf("hung is %s after the shutdown, want failed", st.State)
			}
			if st := b.state("app"); st.State != StateStopped {
				t.Errorf("app is %s after the shutdown, want stopped", st.State)
			}
		})
	})
}

// TestCommandTable puts a unit in each state a command can meet and checks
// the answer the table gives: refused with 409 naming the state, or
// accepted and leading to the state wanted.
func TestCommandTable(t *testing.T) {
	type setup struct {
		name  string
		state State
		kill  bool // kill svc once it runs
		// prepare builds the units (the one under test is "svc"), the
		// gates that hold a start back, and the policy.
		prepare func(t *testing.T) (units []Unit, gates map[string]chan struct{}, policy Policy)
	}
	policy := timerPolicy()
	policy.BackoffMin, policy.BackoffMax = time.Hour, time.Hour
	healthy := func(*testing.T) ([]Unit, map[string]chan struct{}, Policy) {
		return []Unit{{Name: "svc", Build: (&scripted{name: "svc", run: serve}).Build}}, nil, policy
	}
	setups := []setup{
		{"stopped", StateStopped, true, healthy},
		{"running", StateRunning, false, healthy},
		{"probing readiness", StateStarting, false, func(*testing.T) ([]Unit, map[string]chan struct{}, Policy) {
			return []Unit{{Name: "svc", Build: (&scripted{name: "svc", run: serve}).Build}},
				map[string]chan struct{}{"svc": make(chan struct{})}, policy
		}},
		{"waiting for a dependency", StateStarting, false, func(*testing.T) ([]Unit, map[string]chan struct{}, Policy) {
			return []Unit{
					{Name: "svc", DependsOn: []string{"base"}, Build: (&scripted{name: "svc", run: serve}).Build},
					{Name: "base", Build: (&scripted{name: "base", run: serve}).Build},
				},
				map[string]chan struct{}{"base": make(chan struct{})}, policy
		}},
		{"backoff", StateBackoff, false, func(*testing.T) ([]Unit, map[string]chan struct{}, Policy) {
			return []Unit{{Name: "svc", Build: (&scripted{name: "svc", run: func(ctx context.Context, n int, up func()) error {
				if n == 1 {
					return errCrash
				}
				return serve(ctx, n, up)
			}}).Build}}, nil, policy
		}},
		{"failed", StateFailed, false, func(*testing.T) ([]Unit, map[string]chan struct{}, Policy) {
			p := policy
			p.MaxFailures = 0
			return []Unit{{Name: "svc", Build: (&scripted{name: "svc", run: func(ctx context.Context, n int, up func()) error {
				if n == 1 {
					return errCrash
				}
				return serve(ctx, n, up)
			}}).Build}}, nil, p
		}},
	}
	// The answers of commands.go, spelled out: "" is refused, otherwise
	// the state the unit reaches once the gates are open.
	want := map[State]map[cmdKind]State{
		StateStopped:  {cmdKill: "", cmdRun: StateRunning, cmdRestart: StateRunning},
		StateRunning:  {cmdKill: StateStopped, cmdRun: "", cmdRestart: StateRunning},
		StateStarting: {cmdKill: StateStopped, cmdRun: "", cmdRestart: StateRunning},
		StateBackoff:  {cmdKill: StateStopped, cmdRun: "", cmdRestart: StateRunning},
		StateFailed:   {cmdKill: "", cmdRun: StateRunning, cmdRestart: StateRunning},
	}
	for _, s := range setups {
		for _, kind := range []cmdKind{cmdKill, cmdRun, cmdRestart} {
			t.Run(s.name+"/"+kind.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					units, gates, p := s.prepare(t)
					b := runBubble(t, p, gates, units...)
					defer b.stop()
					if s.kill {
						if _, err := b.sup.Kill(context.Background(), "svc"); err != nil {
							t.Fatal(err)
						}
					}
					if st := b.state("svc"); st.State != s.state {
						t.Fatalf("setup: svc is %s, want %s", st.State, s.state)
					}
					var (
						got Status
						err error
					)
					done := make(chan struct{})
					go func() {
						defer close(done)
						got, err = b.sup.command(context.Background(), "svc", kind)
					}()
					// Let the command land in the state set up, then
					// open every gate so a start can complete.
					synctest.Wait()
					for _, g := range b.gates {
						select {
						case <-g:
						default:
							close(g)
						}
					}
					<-done
					w := want[s.state][kind]
					switch {
					case w == "" && !errors.Is(err, ErrWrongState):
						t.Errorf("%s: %+v, %v; want refused", kind, got, err)
					case w == "" && !strings.Contains(err.Error(), string(s.state)):
						t.Errorf("%s: %v; want the state named", kind, err)
					case w != "" && (err != nil || got.State != w):
						t.Errorf("%s: %s, %v; want %s", kind, got.State, err, w)
					}
				})
			})
		}
	}
}
