// Command proxy measures the proxy's figures of issue 8 (item 7), each as a
// ratio against a baseline measured in the same invocation, with wrk, an
// external load generator, against separate server processes, in
// interleaved rounds reported as min/median/max:
//
//  1. colocated small GETs: one `ocis server`, a 1 KiB file fetched from
//     the storage service's own listener (direct) and through the proxy,
//     which hands the request to the storage handler in its process;
//     target proxy/direct >= 0.85;
//  2. networked small GETs: `ocis proxy server` and `ocis storage server`
//     as separate processes, against nginx in front of the same storage
//     process; target proxy/nginx >= 0.8; each forwarder's CPU time per
//     request beside its throughput;
//  3. 1000 connections: the networked proxy and nginx at -c1000 with their
//     resident memory sampled; target proxy RSS <= 150 MB;
//  4. large transfers: a file of -size bytes uploaded and downloaded with
//     storage.Client, directly and through the colocated proxy, from and
//     into memory (hashed after the timing); target proxy/direct >= 0.8.
//
// Usage (from the module root, as it builds ./cmd/ocis):
//
//	go run ./bench/proxy             # 3 rounds of 10s per target, 1 GiB transfers
//	go run ./bench/proxy -short      # 3 rounds of 3s per target, 128 MiB transfers
//	go run ./bench/proxy -only networked -pprof /tmp/prof   # and a CPU profile of the proxy
//	go run ./bench/proxy -only networked -syscalls          # and each forwarder's system calls per request (perf)
//
// It needs nginx and wrk; when either is missing it installs the Debian
// packages nginx-light and wrk with apt-get (root only). Everything listens
// on 127.0.0.1 only. The run is bounded by -timeout; it kills every child
// process (ocis, nginx and its workers, wrk) and removes its temporary
// directory when it ends, on failure and on SIGINT/SIGTERM too (a second
// signal exits at once).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

func main() {
	os.Exit(benchmark(os.Args[1:], os.Stdout, os.Stderr))
}

// options holds the flags of one run.
type options struct {
	short        bool
	duration     time.Duration
	conns        int
	threads      int
	rounds       int
	size         byteSize
	timeout      time.Duration
	nginxWorkers int
	only         string
	pprofDir     string
	keep         bool
	syscalls     bool
	proxyGOGC    int
	netHTTPPlane bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	cfg := options{size: 1 << 30}
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.short, "short", false, "smoke run: 3 rounds of 3s per target, 128MiB transfers")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "duration of one wrk run (whole seconds)")
	fs.IntVar(&cfg.conns, "c", 32, "wrk connections (fixed concurrency)")
	fs.IntVar(&cfg.threads, "t", 2, "wrk threads")
	fs.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds per target, for small GETs and for transfers")
	fs.Var(&cfg.size, "size", "bytes of the large transfer (suffixes KiB, MiB, GiB, KB, MB, GB)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	fs.IntVar(&cfg.nginxWorkers, "nginx-workers", 2, "nginx worker_processes")
	fs.StringVar(&cfg.only, "only", "", "comma list of benchmarks to run: colocated, networked, rss, transfer (default all; rss runs with networked)")
	fs.StringVar(&cfg.pprofDir, "pprof", "", "write 5s CPU profiles of the colocated direct and proxy targets and of the networked proxy, each during an extra wrk run, to `dir`")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (binary, data dir, logs, nginx.conf)")
	fs.BoolVar(&cfg.syscalls, "syscalls", false, "count each forwarder's system calls per request in the networked benchmark with perf stat, during an extra wrk run (not counted)")
	fs.BoolVar(&cfg.netHTTPPlane, "nethttp-plane", true, "also measure, in the networked rounds, a second `ocis proxy server` on the net/http data plane (OCIS_PROXY_DATA_PLANE=net/http); the first serves on fasthttp, as `ocis proxy server` does")
	fs.IntVar(&cfg.proxyGOGC, "proxy-gogc", 0, "also measure, in the networked rounds, a second `ocis proxy server` run with GOGC=`N` in its environment (0: none)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.short {
		// -short sets what the caller did not set.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			cfg.rounds = 3
		}
		if !set["d"] {
			cfg.duration = 3 * time.Second
		}
		if !set["size"] {
			cfg.size = 128 << 20
		}
	}
	switch {
	case cfg.duration < time.Second || cfg.duration > 5*time.Minute || cfg.duration%time.Second != 0:
		return options{}, fmt.Errorf("-d %s: want whole seconds from 1s to 5m", cfg.duration)
	case cfg.conns < 1 || cfg.conns > 10000:
		return options{}, fmt.Errorf("-c %d: want 1 to 10000", cfg.conns)
	case cfg.threads < 1 || cfg.threads > cfg.conns:
		return options{}, fmt.Errorf("-t %d: want 1 to -c (%d)", cfg.threads, cfg.conns)
	case cfg.rounds < 1 || cfg.rounds > 100:
		return options{}, fmt.Errorf("-rounds %d: want 1 to 100", cfg.rounds)
	case cfg.size < 1<<20:
		return options{}, fmt.Errorf("-size %s: want at least 1MiB", cfg.size)
	case cfg.timeout <= 0 || cfg.timeout > 2*time.Hour:
		return options{}, fmt.Errorf("-timeout %s: want more than 0 and at most 2h", cfg.timeout)
	case cfg.proxyGOGC < 0:
		return options{}, fmt.Errorf("-proxy-gogc %d: want 0 (none) or a GOGC percentage", cfg.proxyGOGC)
	case cfg.nginxWorkers < 1 || cfg.nginxWorkers > 64:
		return options{}, fmt.Errorf("-nginx-workers %d: want 1 to 64", cfg.nginxWorkers)
	}
	for _, name := range strings.Split(cfg.only, ",") {
		switch name {
		case "", "colocated", "networked", "rss", "transfer":
		default:
			return options{}, fmt.Errorf("-only %q: unknown benchmark %q; known: colocated, networked, rss, transfer", cfg.only, name)
		}
	}
	return cfg, nil
}

// wants reports whether the benchmark named name is to run; rss runs
// inside networked.
func (c options) wants(name string) bool {
	if c.only == "" {
		return true
	}
	if name == "networked" && c.wants("rss") {
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
// binary, the child processes and where figures go.
type bench struct {
	cfg  options
	tmp  string
	ocis string // the real binary, built from ./cmd/ocis
	kids *benchkit.Children
	env  []string // the environment of every child: ours without OCIS_*
	out  io.Writer
	log  io.Writer
}

func benchmark(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return benchkit.FlagsFailed("proxy", err, stderr)
	}
	run := benchkit.Run{Name: "proxy", Args: args, Short: cfg.short, Keep: cfg.keep, Timeout: cfg.timeout, Stdout: stdout, Stderr: stderr}
	return run.Measure(func(ctx context.Context, s *benchkit.Session) error {
		b := &bench{cfg: cfg, tmp: s.Tmp, kids: s.Kids, env: s.Env, out: s.Out, log: s.Log}
		return b.measure(ctx)
	})
}

// measure builds ocis, runs the benchmarks asked for, and repeats their
// figures at the end with the load average, which says whether anything
// else competed for the CPUs.
func (b *bench) measure(ctx context.Context) error {
	if err := ensureTools(ctx, b.log); err != nil {
		return err
	}
	if err := b.build(ctx); err != nil {
		return err
	}
	load0, _ := benchkit.LoadAverage()
	var summary []string
	if b.cfg.wants("colocated") || b.cfg.wants("transfer") {
		addrs, err := newOcisAddrs()
		if err != nil {
			return err
		}
		srv, err := b.startOcis(ctx, addrs, "warn", b.cfg.pprofDir != "")
		if err != nil {
			return err
		}
		defer srv.stop()
		fmt.Fprintln(b.out, "ocis: OCIS_LOG_LEVEL=warn, so the proxy's access log (one line per request, at info) is off, as nginx's is")
		if b.cfg.wants("colocated") {
			lines, err := b.colocated(ctx, srv)
			if err != nil {
				return fmt.Errorf("colocated small GETs: %w", err)
			}
			summary = append(summary, lines...)
		}
		if b.cfg.wants("transfer") {
			lines, err := b.transfers(ctx, srv)
			if err != nil {
				return fmt.Errorf("large transfers: %w", err)
			}
			summary = append(summary, lines...)
		}
		if err := srv.stop(); err != nil {
			return err
		}
	}
	if b.cfg.wants("networked") {
		lines, err := b.networked(ctx)
		if err != nil {
			return fmt.Errorf("networked: %w", err)
		}
		summary = append(summary, lines...)
	}
	load1, _ := benchkit.LoadAverage()
	fmt.Fprintf(b.out, "summary (load average %.2f at start, %.2f at end; wrk shares the CPUs with the servers):\n", load0, load1)
	for _, l := range summary {
		fmt.Fprintln(b.out, "  "+l)
	}
	return nil
}
