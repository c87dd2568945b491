package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// The scale targets of the issue.
const (
	scaleReadyTarget = time.Second
	scaleRSSTargetKB = 200 << 10
)

// Which side a scale child measures. The third is a diagnosis, not a
// baseline: the supervisor with a registry that records nothing, to tell
// the registry's share of the supervisor's cost.
const (
	modeSupervised = "supervised"
	modeDirect     = "direct"
	modeNoRegistry = "supervised-noreg"
)

// trivial is the smallest member of a family: service.Serve with a handler
// that finds nothing, its own registry, both listeners on 127.0.0.1:0.
type trivial struct{}

func (trivial) Run(ctx context.Context, up func(service.Addrs)) error {
	return service.Serve(ctx, up, service.Parts{
		Logger:   log.NewNopLogger(),
		Base:     &service.Base{HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Handler:  http.NotFoundHandler(),
		Registry: prometheus.NewRegistry(),
	})
}

// scaleRound is what one scale child reports.
type scaleRound struct {
	Mode        string        `json:"mode"`
	Services    int           `json:"services"`
	Ready       time.Duration `json:"ready_ns"`
	Stop        time.Duration `json:"stop_ns"`
	RSSBeforeKB int64         `json:"rss_before_kb"`
	RSSKB       int64         `json:"rss_kb"`
	HeapKB      int64         `json:"heap_kb"`
	StackKB     int64         `json:"stack_kb"`
	Goroutines  int           `json:"goroutines"`
}

// scale measures n trivial services, supervised and direct, each round in a
// fresh process so that one side's heap is not the other's RSS; then it
// times `ocis list --json` against a supervisor of n services.
func (b *bench) scale(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rounds := map[string][]scaleRound{}
	for i := range b.cfg.scaleRounds {
		modes := []string{modeSupervised, modeDirect, modeNoRegistry}
		if i%2 == 1 {
			modes[0], modes[1] = modes[1], modes[0]
		}
		for _, mode := range modes {
			_, out, err := b.kids.Run(ctx, "scale child "+mode, 2*time.Minute, b.env, self,
				"-scale-child", mode, "-services", strconv.Itoa(b.cfg.services))
			if err != nil {
				return err
			}
			var r scaleRound
			if err := json.Unmarshal(out, &r); err != nil {
				return fmt.Errorf("scale child %s printed %q: %w", mode, out, err)
			}
			rounds[mode] = append(rounds[mode], r)
			fmt.Fprintf(b.log, "  scale round %d %-16s all ready %s, RSS %s (before %s, heap %s, stacks %s), %d goroutines, stop %s\n",
				i+1, mode, benchkit.CoarseMillis(r.Ready), mb(r.RSSKB), mb(r.RSSBeforeKB), mb(r.HeapKB), mb(r.StackKB), r.Goroutines, benchkit.CoarseMillis(r.Stop))
		}
	}
	sup, dir := summariseRounds(rounds[modeSupervised]), summariseRounds(rounds[modeDirect])
	fmt.Fprintf(b.out, "scale: %d services all running in p50 %s under the supervisor, %s started directly; ratio %.2f (target < %s)%s\n",
		b.cfg.services, benchkit.CoarseMillis(sup.ready), benchkit.CoarseMillis(dir.ready), ratio(sup.ready, dir.ready), scaleReadyTarget, benchkit.Verdict(sup.ready < scaleReadyTarget))
	fmt.Fprintf(b.out, "scale: RSS after GC with %d services p50 %s under the supervisor, %s started directly (process before start %s); ratio %.2f (target < %s)%s\n",
		b.cfg.services, mb(sup.rss), mb(dir.rss), mb(sup.rssBefore), float64(sup.rss)/float64(dir.rss), mb(scaleRSSTargetKB), benchkit.Verdict(sup.rss < scaleRSSTargetKB))
	fmt.Fprintf(b.out, "scale: stop of all %d p50 %s under the supervisor, %s direct; %d goroutines supervised, %d direct (%d rounds each, fresh process per round)\n",
		b.cfg.services, benchkit.CoarseMillis(sup.stop), benchkit.CoarseMillis(dir.stop), sup.goroutines, dir.goroutines, b.cfg.scaleRounds)
	noreg := summariseRounds(rounds[modeNoRegistry])
	fmt.Fprintf(b.out, "scale: the same supervisor with a no-op registry instead of registry.Memory: all running p50 %s, stop p50 %s, RSS %s (the difference is the registry's)\n",
		benchkit.CoarseMillis(noreg.ready), benchkit.CoarseMillis(noreg.stop), mb(noreg.rss))
	return b.scaleList(ctx)
}

type roundSummary struct {
	ready, stop    time.Duration
	rss, rssBefore int64
	goroutines     int
}

func summariseRounds(rs []scaleRound) roundSummary {
	var (
		ready, stop []time.Duration
		rss, before []int64
		goroutines  []int
	)
	for _, r := range rs {
		ready = append(ready, r.Ready)
		stop = append(stop, r.Stop)
		rss = append(rss, r.RSSKB)
		before = append(before, r.RSSBeforeKB)
		goroutines = append(goroutines, r.Goroutines)
	}
	return roundSummary{
		ready: benchkit.Median(ready), stop: benchkit.Median(stop),
		rss: benchkit.Median(rss), rssBefore: benchkit.Median(before), goroutines: benchkit.Median(goroutines),
	}
}

// scaleChild is one round in a fresh process: start the services, time them
// to all ready, read the RSS after a GC, stop them, print the round as JSON.
func scaleChild(cfg options, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var (
		r   scaleRound
		err error
	)
	switch cfg.child {
	case modeSupervised:
		r, err = supervisedRound(ctx, newScaleSupervisor(cfg.services, registry.NewMemory()))
	case modeNoRegistry:
		r, err = supervisedRound(ctx, newScaleSupervisor(cfg.services, nopRegistry{}))
	case modeDirect:
		r, err = directRound(ctx, cfg.services)
	default:
		return fmt.Errorf("unknown mode %q; known: %s, %s, %s", cfg.child, modeSupervised, modeDirect, modeNoRegistry)
	}
	if err != nil {
		return err
	}
	r.Mode = cfg.child
	return json.NewEncoder(out).Encode(r)
}

// newScaleSupervisor returns a supervisor of n trivial services under the
// default policy, recording them in instances as ocis server does.
func newScaleSupervisor(n int, instances registry.Registry) *supervisor.Supervisor {
	units := make([]supervisor.Unit, n)
	for i := range units {
		units[i] = supervisor.Unit{
			Name:  fmt.Sprintf("svc%04d", i),
			Build: func() (service.Runner, error) { return trivial{}, nil },
		}
	}
	return supervisor.New(log.NewNopLogger(), supervisor.DefaultPolicy(), "bench", prometheus.NewRegistry(), instances, units)
}

// nopRegistry records nothing.
type nopRegistry struct{}

func (nopRegistry) Declare(string, []string, []string) error { return nil }
func (nopRegistry) Register(registry.Instance) error         { return nil }
func (nopRegistry) Deregister(registry.Instance) error       { return nil }
func (nopRegistry) Table() *registry.Table                   { return registry.NewTable(nil, nil) }

// awaitAllRunning waits until every unit of sup runs; a unit that fails is
// an error.
func awaitAllRunning(ctx context.Context, sup *supervisor.Supervisor) error {
	for {
		changed := sup.Changed()
		if sup.Ready() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			for _, st := range sup.Statuses() {
				if st.State != supervisor.StateRunning {
					return fmt.Errorf("%s is %s (%s): %w", st.Name, st.State, st.LastError, ctx.Err())
				}
			}
			return ctx.Err()
		}
	}
}

func supervisedRound(ctx context.Context, sup *supervisor.Supervisor) (scaleRound, error) {
	r := scaleRound{Services: len(sup.Statuses()), RSSBeforeKB: rssAfterGC()}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- sup.Run(runCtx) }()
	if err := awaitAllRunning(ctx, sup); err != nil {
		return r, err
	}
	r.Ready = time.Since(t0)
	r.Goroutines = goruntime.NumGoroutine()
	r.measureMemory()
	t1 := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			return r, err
		}
	case <-ctx.Done():
		return r, fmt.Errorf("supervisor did not stop: %w", ctx.Err())
	}
	r.Stop = time.Since(t1)
	return r, nil
}

// directRound starts the same n services in plain goroutines and polls each
// one's /readyz the way the supervisor does, with the same kind of client.
func directRound(ctx context.Context, n int) (scaleRound, error) {
	r := scaleRound{Services: n, RSSBeforeKB: rssAfterGC()}
	probe := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Second}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		running, ready sync.WaitGroup
		mu             sync.Mutex
		errs           []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	t0 := time.Now()
	for i := range n {
		running.Add(1)
		ready.Add(1)
		up := make(chan service.Addrs, 1)
		stopped := make(chan struct{})
		go func() {
			defer running.Done()
			defer close(stopped)
			err := trivial{}.Run(runCtx, func(a service.Addrs) { up <- a })
			if err != nil {
				fail(fmt.Errorf("service %d: %w", i, err))
			}
		}()
		go func() {
			defer ready.Done()
			select {
			case a := <-up:
				if err := benchkit.AwaitStatus(ctx, probe, "http://"+a.Debug+"/readyz", nil, http.StatusOK, time.Millisecond, 30*time.Second, stopped); err != nil {
					fail(fmt.Errorf("service %d: %w", i, err))
				}
			case <-stopped:
			}
		}()
	}
	ready.Wait()
	r.Ready = time.Since(t0)
	if len(errs) > 0 {
		stop()
		running.Wait()
		return r, errors.Join(errs...)
	}
	r.Goroutines = goruntime.NumGoroutine()
	r.measureMemory()
	t1 := time.Now()
	stop()
	running.Wait()
	r.Stop = time.Since(t1)
	return r, errors.Join(errs...)
}

// measureMemory reads RSS, heap and stacks after a GC that returns freed
// memory to the system.
func (r *scaleRound) measureMemory() {
	r.RSSKB = rssAfterGC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	r.HeapKB = int64(m.HeapInuse >> 10)
	r.StackKB = int64(m.StackInuse >> 10)
}

// rssAfterGC is VmRSS of this process in kB after a GC that returns freed
// memory to the system; -1 when /proc cannot tell.
func rssAfterGC() int64 {
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb
		}
	}
	return -1
}

// scaleList serves the control API of a supervisor of n services in this
// process and times the real `ocis list --json` against it, alternating with
// `ocis version`, the cost of starting the binary at all.
func (b *bench) scaleList(ctx context.Context) error {
	n := b.cfg.services
	sup := newScaleSupervisor(n, registry.NewMemory())
	supCtx, stopSup := context.WithCancel(ctx)
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(supCtx) }()
	defer func() {
		stopSup()
		<-supDone
	}()
	waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
	defer cancelWait()
	if err := awaitAllRunning(waitCtx, sup); err != nil {
		return err
	}

	token, err := randomToken()
	if err != nil {
		return err
	}
	nop := log.NewNopLogger()
	h := control.NewHTTPHandler(control.MakeEndpoints(control.New(sup, "bench", nil), endpoint.Chain{Logger: nop}), nop, token, prometheus.NewRegistry(), sup.Ready)
	api, err := transport.Listen(nop, "127.0.0.1:0", h, 5*time.Second)
	if err != nil {
		return err
	}
	apiCtx, stopAPI := context.WithCancel(ctx)
	var g run.Group
	api.AddTo(&g)
	g.Add(func() error {
		<-apiCtx.Done()
		return nil
	}, func(error) { stopAPI() })
	apiDone := make(chan error, 1)
	go func() { apiDone <- g.Run() }()
	defer func() {
		stopAPI()
		<-apiDone
	}()

	env := append(b.serverEnv(b.tmp, nil),
		config.EnvName("runtime", "addr")+"="+api.Addr(),
		config.EnvName("runtime", "token")+"="+token)
	var lists, versions []time.Duration
	listOnce := func() error {
		d, out, err := b.kids.Run(ctx, "ocis list --json", 30*time.Second, env, b.ocis, "list", "--json")
		if err != nil {
			return err
		}
		var got []supervisor.Status
		if err := json.NewDecoder(bytes.NewReader(out)).Decode(&got); err != nil {
			return fmt.Errorf("ocis list --json printed no status array: %w", err)
		}
		if len(got) != n {
			return fmt.Errorf("ocis list --json listed %d services, want %d", len(got), n)
		}
		lists = append(lists, d)
		return nil
	}
	versionOnce := func() error {
		d, _, err := b.kids.Run(ctx, "ocis version", 30*time.Second, env, b.ocis, "version")
		if err != nil {
			return err
		}
		versions = append(versions, d)
		return nil
	}
	for i := range b.cfg.listRuns {
		steps := []func() error{listOnce, versionOnce}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
	}
	l, v := benchkit.Median(lists), benchkit.Median(versions)
	fmt.Fprintf(b.out, "scale: ocis list --json of %d services p50 %s over %d runs, ocis version p50 %s; ratio %.2f\n",
		n, benchkit.CoarseMillis(l), len(lists), benchkit.CoarseMillis(v), ratio(l, v))
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
