package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services"
)

// coldTarget is the ratio ocis server / floor that the issue asks for.
const coldTarget = 3.0

// startGrace bounds one start to ready, and one stop after SIGTERM.
const startGrace = 15 * time.Second

// coldSide collects the figures of one kind of cold start.
type coldSide struct {
	name   string
	starts []time.Duration
	stops  []time.Duration
	// cpus is the CPU time each start had used when /readyz first
	// answered 200: on a machine shared with other work it moves less
	// than the wall time, and it is what a start competes with the rest
	// of the machine for.
	cpus []time.Duration
}

func (s *coldSide) add(start, cpu, stop time.Duration) {
	s.starts = append(s.starts, start)
	s.cpus = append(s.cpus, cpu)
	s.stops = append(s.stops, stop)
}

// coldStart times exec to the first 200 from /readyz, for the real binary
// and the floor, alternating which goes first. Each `ocis server` run gets a
// fresh data dir, initialised by `ocis init` beforehand so that init is not
// counted; two more runs per round show the cost of what that leaves out:
// one where `ocis server` runs the init itself, and one on the data dir the
// first run has just used (the admin account exists, so no bcrypt hash).
func (b *bench) coldStart(ctx context.Context) error {
	// The default family opens the runtime's control API and, per
	// service, its HTTP and debug listeners.
	listeners := 1 + 2*len(defaultFamily())
	client := pollClient()
	server := &coldSide{name: "ocis server"}
	floor := &coldSide{name: "floor"}
	withInit := &coldSide{name: "ocis server, init counted"}
	reused := &coldSide{name: "ocis server, data dir used before"}

	for i := range b.cfg.runs {
		dir := filepath.Join(b.tmp, fmt.Sprintf("cold-%d", i))
		initialised := filepath.Join(dir, "initialised")
		fresh := filepath.Join(dir, "fresh")
		if err := os.MkdirAll(fresh, 0o700); err != nil {
			return err
		}
		if _, _, err := b.kids.Run(ctx, "ocis init", startGrace, b.serverEnv(initialised, nil), b.ocis, "init"); err != nil {
			return err
		}
		steps := []func() error{
			func() error { return b.coldOnce(ctx, client, server, listeners, initialised) },
			func() error { return b.floorOnce(ctx, client, floor, listeners) },
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		steps = append(steps,
			func() error { return b.coldOnce(ctx, client, withInit, listeners, fresh) },
			func() error { return b.coldOnce(ctx, client, reused, listeners, initialised) },
		)
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		fmt.Fprintf(b.log, "  cold start %d/%d: ocis server %s, floor %s, init counted %s, data dir used before %s\n", i+1, b.cfg.runs,
			benchkit.CoarseMillis(server.starts[i]), benchkit.CoarseMillis(floor.starts[i]), benchkit.CoarseMillis(withInit.starts[i]), benchkit.CoarseMillis(reused.starts[i]))
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}

	// The ratio is taken pair by pair: the two starts of a pair ran one
	// after the other, under the same load, so its ratio holds less of
	// the machine's noise than a ratio of medians.
	pairs := make([]float64, len(server.starts))
	for i := range pairs {
		pairs[i] = ratio(server.starts[i], floor.starts[i])
	}
	srv, fl := benchkit.Median(server.starts), benchkit.Median(floor.starts)
	r50, r90 := benchkit.Percentile(pairs, 50), benchkit.Percentile(pairs, 90)
	fmt.Fprintf(b.out, "cold start: ocis server p50 %s p90 %s, floor p50 %s p90 %s, %d pairs\n",
		benchkit.CoarseMillis(srv), benchkit.CoarseMillis(benchkit.Percentile(server.starts, 90)),
		benchkit.CoarseMillis(fl), benchkit.CoarseMillis(benchkit.Percentile(floor.starts, 90)), len(pairs))
	fmt.Fprintf(b.out, "cold start: ocis server / floor, pair by pair: p50 %.2f, p90 %.2f (min %.2f, max %.2f); target p50 <= %.0f%s\n",
		r50, r90, slices.Min(pairs), slices.Max(pairs), coldTarget, benchkit.Verdict(r50 <= coldTarget))
	cpuPairs := make([]float64, len(server.cpus))
	for i := range cpuPairs {
		cpuPairs[i] = ratio(server.cpus[i], floor.cpus[i])
	}
	fmt.Fprintf(b.out, "cold start: CPU to ready p50: ocis server %s, floor %s; pair by pair p50 %.2f, p90 %.2f (no target)\n",
		benchkit.CoarseMillis(benchkit.Median(server.cpus)), benchkit.CoarseMillis(benchkit.Median(floor.cpus)),
		benchkit.Percentile(cpuPairs, 50), benchkit.Percentile(cpuPairs, 90))
	for _, s := range []*coldSide{withInit, reused} {
		fmt.Fprintf(b.out, "cold start (%s): p50 %s, p50 ratio to floor %.2f (no target)\n", s.name, benchkit.CoarseMillis(benchkit.Median(s.starts)), ratio(benchkit.Median(s.starts), fl))
	}
	fmt.Fprintf(b.out, "cold start: SIGTERM to exit p50: ocis server %s, floor %s (%d listeners each, %d runs, polled every %s)\n",
		benchkit.CoarseMillis(benchkit.Median(server.stops)), benchkit.CoarseMillis(benchkit.Median(floor.stops)), listeners, b.cfg.runs, b.cfg.poll)
	return nil
}

// serverEnv is the environment of an ocis process on data dir dir; addrs,
// when given, are the runtime's address then each default service's HTTP
// and debug address in catalogue order.
func (b *bench) serverEnv(dir string, addrs []string) []string {
	env := append(b.env[:len(b.env):len(b.env)], config.EnvName("", "base-data-path")+"="+dir)
	if len(addrs) == 0 {
		return env
	}
	env = append(env, config.EnvName("runtime", "addr")+"="+addrs[0])
	for i, d := range defaultFamily() {
		env = append(env,
			config.EnvName(d.Name, benchkit.PrimaryAddrFlag(d))+"="+addrs[1+2*i],
			config.EnvName(d.Name, "debug-addr")+"="+addrs[2+2*i])
	}
	return env
}

// defaultFamily is what `ocis server` runs without a selection: every
// service in the catalogue that is not optional (all of them today).
func defaultFamily() []service.Descriptor {
	var out []service.Descriptor
	for _, d := range services.Catalogue() {
		if d.Default() {
			out = append(out, d)
		}
	}
	return out
}

// coldOnce runs `ocis server` on dir once: exec, wait for the runtime's
// /readyz, SIGTERM, wait for a clean exit.
func (b *bench) coldOnce(ctx context.Context, client *http.Client, side *coldSide, listeners int, dir string) error {
	addrs, err := benchkit.FreeAddrs(listeners)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.ocis, "server")
	cmd.Env = b.serverEnv(dir, addrs)
	return b.startStop(ctx, client, side, cmd, "http://"+addrs[0]+"/readyz")
}

// floorOnce runs the floor once, on as many listeners as ocis server opens.
func (b *bench) floorOnce(ctx context.Context, client *http.Client, side *coldSide, listeners int) error {
	addrs, err := benchkit.FreeAddrs(listeners)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.floor, addrs...)
	cmd.Env = b.env
	return b.startStop(ctx, client, side, cmd, "http://"+addrs[0]+"/readyz")
}

func (b *bench) startStop(ctx context.Context, client *http.Client, side *coldSide, cmd *exec.Cmd, readyURL string) error {
	t0 := time.Now()
	ch, err := b.kids.Start(side.name, cmd)
	if err != nil {
		return err
	}
	if err := benchkit.AwaitStatus(ctx, client, readyURL, nil, http.StatusOK, b.cfg.poll, startGrace, ch.Done()); err != nil {
		ch.Kill()
		<-ch.Done()
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%s: %w; output:\n%s", side.name, err, ch.Output())
	}
	started := time.Since(t0)
	cpu, err := threadsCPU(ch.Pid())
	if err != nil {
		ch.Kill()
		<-ch.Done()
		return fmt.Errorf("%s: %w", side.name, err)
	}
	stopped, err := ch.Stop(syscall.SIGTERM, startGrace)
	if err != nil {
		return err
	}
	side.add(started, cpu, stopped)
	return nil
}

// threadsCPU is the time the threads of process pid have run on a CPU, in
// nanoseconds (the first field of each thread's schedstat): a start uses
// a few milliseconds, below the 10 ms tick of /proc/<pid>/stat. A thread
// that has already exited is not counted; the Go runtime keeps its
// threads.
func threadsCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return 0, err
		}
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// pollClient is the client of the cold start probes: no keep-alive, since
// every probe meets a new process, and no proxy from the environment.
func pollClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   time.Second,
	}
}
