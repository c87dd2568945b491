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
	benchkit.RunFlags
	benchkit.WrkFlags
	rounds int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var cfg options
	fs := flag.NewFlagSet("tracing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RunFlags.Register(fs, "smoke run: 3 rounds of 3s per setting")
	cfg.WrkFlags.Register(fs, 32)
	fs.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds per setting")
	set, err := cfg.RunFlags.Parse(fs, args)
	if err != nil {
		return options{}, err
	}
	if cfg.Short && !set["d"] {
		cfg.Duration = 3 * time.Second
	}
	if err := cfg.WrkFlags.Validate(); err != nil {
		return options{}, err
	}
	if cfg.rounds < 3 || cfg.rounds > 100 {
		return options{}, fmt.Errorf("-rounds %d: want 3 to 100", cfg.rounds)
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
	run := cfg.RunFlags.Run("tracing", args)
	run.Stdout, run.Stderr = stdout, stderr
	return run.Measure(func(ctx context.Context, s *benchkit.Session) error {
		b := &bench{cfg: cfg, tmp: s.Tmp, kids: s.Kids, env: s.Env, out: s.Out, log: s.Log}
		return b.measure(ctx)
	})
}
