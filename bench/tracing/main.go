// Command tracing measures what OpenTelemetry tracing costs (issue 12,
// item 6): small GETs through the proxy with tracing off, on at 1% and on
// at 100% sampling, each figure a ratio against "off" measured in the
// same invocation. wrk, an external load generator, drives three `ocis
// server` processes started side by side, one per setting, in interleaved
// rounds (off, 1%, 100%, off, …) reported as min/median/max, with each
// process's CPU time per request (from /proc) beside its throughput.
//
// The traced processes export over OTLP/HTTP to a sink in this process
// that reads and drops every batch, so the figure holds what the
// service pays to make, encode and send its spans, and no collector's
// CPU. Target: CPU per request at 1% no more than 1.10 times off.
//
// Usage (from the module root, as it builds ./cmd/ocis):
//
//	go run ./bench/tracing          # 3 rounds of 10s per setting
//	go run ./bench/tracing -short   # 3 rounds of 3s per setting
//
// It needs wrk (the Debian package is installed with apt-get when
// missing, as root). Everything listens on 127.0.0.1; every child process
// is killed and the temporary directory removed when it ends, on failure
// and on SIGINT/SIGTERM too.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

func main() {
	os.Exit(benchmark(os.Args[1:], os.Stdout, os.Stderr))
}

// options holds the flags of one run.
type options struct {
	short    bool
	duration time.Duration
	conns    int
	threads  int
	rounds   int
	timeout  time.Duration
	keep     bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var cfg options
	fs := flag.NewFlagSet("tracing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.short, "short", false, "smoke run: 3 rounds of 3s per setting")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "duration of one wrk run (whole seconds)")
	fs.IntVar(&cfg.conns, "c", 32, "wrk connections")
	fs.IntVar(&cfg.threads, "t", 2, "wrk threads")
	fs.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds per setting")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (binary, data dirs, logs)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			cfg.duration = 3 * time.Second
		}
	}
	switch {
	case cfg.duration < time.Second || cfg.duration > 5*time.Minute || cfg.duration%time.Second != 0:
		return options{}, fmt.Errorf("-d %s: want whole seconds from 1s to 5m", cfg.duration)
	case cfg.conns < 1 || cfg.conns > 10000:
		return options{}, fmt.Errorf("-c %d: want 1 to 10000", cfg.conns)
	case cfg.threads < 1 || cfg.threads > cfg.conns:
		return options{}, fmt.Errorf("-t %d: want 1 to -c (%d)", cfg.threads, cfg.conns)
	case cfg.rounds < 3 || cfg.rounds > 100:
		return options{}, fmt.Errorf("-rounds %d: want 3 to 100", cfg.rounds)
	case cfg.timeout <= 0 || cfg.timeout > 2*time.Hour:
		return options{}, fmt.Errorf("-timeout %s: want more than 0 and at most 2h", cfg.timeout)
	}
	return cfg, nil
}

// bench is what one run shares.
type bench struct {
	cfg  options
	tmp  string
	ocis string
	kids *benchkit.Children
	env  []string
	out  io.Writer
	log  io.Writer
}

func benchmark(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return benchkit.FlagsFailed("tracing", err, stderr)
	}
	run := benchkit.Run{Name: "tracing", Args: args, Short: cfg.short, Keep: cfg.keep, Timeout: cfg.timeout, Stdout: stdout, Stderr: stderr}
	return run.Measure(func(ctx context.Context, s *benchkit.Session) error {
		b := &bench{cfg: cfg, tmp: s.Tmp, kids: s.Kids, env: s.Env, out: s.Out, log: s.Log}
		return b.measure(ctx)
	})
}
