// Command runtime measures the runtime issue's three figures, each beside a
// baseline taken in the same invocation:
//
//  1. cold start: exec of the real `ocis server` to the first 200 from the
//     runtime's /readyz, against a floor program that opens as many
//     listeners and answers /readyz at once (bench/runtime/floor);
//  2. crash recovery: a real users service crashing under the supervisor,
//     from the crash to the supervisor reporting it running again, against
//     starting the same service directly;
//  3. scale: 1,000 trivial services under one supervisor, time to all
//     running and RSS, against the same services started in plain
//     goroutines; then `ocis list --json` against that supervisor's control
//     API, against `ocis version`.
//
// Usage (from the module root, as it builds ./cmd/ocis and the floor):
//
//	go run ./bench/runtime            # 10 cold starts, 100 crashes, 1000 services
//	go run ./bench/runtime -short     # 3 cold starts, 20 crashes, 200 services
//	go run ./bench/runtime -only crash -cpuprofile cpu.out
//
// The machine the figures come from is small and noisy, so baseline and
// subject runs alternate and the figures are medians (and p99 where asked).
// Everything listens on 127.0.0.1 only. The run is bounded by -timeout; it
// kills every child process and removes its temporary directory when it
// ends, on failure and on SIGINT/SIGTERM too (a second signal exits at once).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

func main() {
	os.Exit(benchmark(os.Args[1:], os.Stdout, os.Stderr))
}

// options holds the flags of one run.
type options struct {
	short       bool
	runs        int
	crashes     int
	services    int
	scaleRounds int
	listRuns    int
	poll        time.Duration
	timeout     time.Duration
	only        string
	cpuprofile  string
	keep        bool

	// child, when set, makes this process one round of the scale
	// benchmark (see scaleChild); the parent starts it.
	child string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var cfg options
	fs := flag.NewFlagSet("runtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.short, "short", false, "smoke run: 30 cold starts, 20 crashes, 200 services, 1 scale round, 5 list runs")
	fs.IntVar(&cfg.runs, "runs", 30, "cold starts per side, in pairs (at least 30: a percentile of fewer is noise)")
	fs.IntVar(&cfg.crashes, "crashes", 100, "rounds of the crash recovery benchmark: an erroring crash, a panicking one and a direct start each")
	fs.IntVar(&cfg.services, "services", 1000, "trivial services in the scale benchmark")
	fs.IntVar(&cfg.scaleRounds, "scale-rounds", 3, "scale rounds per side, each in a fresh process")
	fs.IntVar(&cfg.listRuns, "list-runs", 20, "runs of `ocis list --json` and of `ocis version`")
	fs.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "interval of the /readyz polls of the cold start")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	fs.StringVar(&cfg.only, "only", "", "comma list of benchmarks to run: cold, crash, scale (default all)")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (not its children) to `file`; with -scale-child, of that round")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (binaries, data dirs) for inspection")
	fs.StringVar(&cfg.child, "scale-child", "", "internal: run one scale round, supervised or direct, and print it as JSON")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.short {
		// -short sets the counts the caller did not set.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, d := range []struct {
			flag string
			p    *int
			v    int
		}{
			{"crashes", &cfg.crashes, 20},
			{"services", &cfg.services, 200},
			{"scale-rounds", &cfg.scaleRounds, 1},
			{"list-runs", &cfg.listRuns, 5},
		} {
			if !set[d.flag] {
				*d.p = d.v
			}
		}
	}
	switch {
	case cfg.runs < 1 || cfg.runs > 1000:
		return options{}, fmt.Errorf("-runs %d: want 1 to 1000", cfg.runs)
	case cfg.crashes < 1 || cfg.crashes > 10000:
		return options{}, fmt.Errorf("-crashes %d: want 1 to 10000", cfg.crashes)
	case cfg.services < 1 || cfg.services > 5000:
		return options{}, fmt.Errorf("-services %d: want 1 to 5000", cfg.services)
	case cfg.scaleRounds < 1 || cfg.scaleRounds > 100:
		return options{}, fmt.Errorf("-scale-rounds %d: want 1 to 100", cfg.scaleRounds)
	case cfg.listRuns < 1 || cfg.listRuns > 1000:
		return options{}, fmt.Errorf("-list-runs %d: want 1 to 1000", cfg.listRuns)
	case cfg.poll <= 0 || cfg.poll > time.Second:
		return options{}, fmt.Errorf("-poll %s: want more than 0 and at most 1s", cfg.poll)
	case cfg.timeout <= 0 || cfg.timeout > time.Hour:
		return options{}, fmt.Errorf("-timeout %s: want more than 0 and at most 1h", cfg.timeout)
	}
	for _, name := range strings.Split(cfg.only, ",") {
		switch name {
		case "", "cold", "crash", "scale":
		default:
			return options{}, fmt.Errorf("-only %q: unknown benchmark %q; known: cold, crash, scale", cfg.only, name)
		}
	}
	return cfg, nil
}

// wants reports whether the benchmark named name is to run.
func (c options) wants(name string) bool {
	if c.only == "" {
		return true
	}
	for _, n := range strings.Split(c.only, ",") {
		if n == name {
			return true
		}
	}
	return false
}

// bench is what the benchmarks share: the temporary directory, the built
// binaries, the child processes and where figures go.
type bench struct {
	cfg   options
	tmp   string
	ocis  string // the real binary, built from ./cmd/ocis
	floor string // the floor binary, built from ./bench/runtime/floor
	kids  *benchkit.Children
	env   []string // the environment of every child: ours without OCIS_*
	out   io.Writer
	log   io.Writer
}

func benchmark(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return benchkit.FlagsFailed("runtime", err, stderr)
	}
	limit, limitErr := raiseFileLimit()
	if cfg.cpuprofile != "" {
		stop, err := startCPUProfile(cfg.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "runtime bench:", err)
			return 1
		}
		defer stop()
	}
	if cfg.child != "" {
		if err := scaleChild(cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "scale child:", err)
			return 1
		}
		return 0
	}

	run := benchkit.Run{Name: "runtime", Args: args, Short: cfg.short, Keep: cfg.keep, Timeout: cfg.timeout, Stdout: stdout, Stderr: stderr}
	return run.Measure(func(ctx context.Context, s *benchkit.Session) error {
		fmt.Fprintf(stdout, "runtime bench: RLIMIT_NOFILE %d\n", limit)
		if limitErr != nil {
			fmt.Fprintln(stdout, "runtime bench: raising RLIMIT_NOFILE:", limitErr)
		}
		b := &bench{cfg: cfg, tmp: s.Tmp, kids: s.Kids, env: s.Env, out: s.Out, log: s.Log}
		return b.measure(ctx, limit)
	})
}

func (b *bench) measure(ctx context.Context, limit uint64) error {
	if b.cfg.wants("cold") || b.cfg.wants("scale") {
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	if b.cfg.wants("cold") {
		if err := b.coldStart(ctx); err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
	}
	if b.cfg.wants("crash") {
		if err := b.crashRecovery(ctx); err != nil {
			return fmt.Errorf("crash recovery: %w", err)
		}
	}
	if b.cfg.wants("scale") {
		// Each service holds two listeners, and its readiness probe one
		// connection at each end while it runs.
		if need := uint64(4*b.cfg.services + 256); limit < need {
			fmt.Fprintf(b.out, "scale: RLIMIT_NOFILE %d is below the about %d descriptors %d services need; expect failures\n", limit, need, b.cfg.services)
		}
		if err := b.scale(ctx); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	return nil
}

// build builds the real binary and the floor with the go command that runs
// this benchmark, from the module root.
func (b *bench) build(ctx context.Context) error {
	b.ocis = filepath.Join(b.tmp, "ocis")
	b.floor = filepath.Join(b.tmp, "floor")
	if err := benchkit.Build(ctx, b.log, b.ocis, "./cmd/ocis"); err != nil {
		return err
	}
	return benchkit.Build(ctx, b.log, b.floor, "./bench/runtime/floor")
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard one: the scale
// benchmark holds two listeners per service and probe connections besides.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if cur := lim.Cur; cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return cur, err
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
