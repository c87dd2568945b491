// Command overhead measures what the framework costs on a users-style
// endpoint (issue 8, item 8): a POST with a small JSON body, decoded
// strictly and answered as JSON, served (a) through pkg/transport's router
// and pkg/endpoint's full middleware chain and (b) by a plain net/http
// handler doing the same work. Each side is its own server process, and
// the load comes from wrk, an external generator in a third process, so no
// side shares its process, scheduler or heap with the load.
//
//	go run ./bench/overhead            # 5 rounds of 10s per side
//	go run ./bench/overhead -short     # 3 rounds of 2s per side, a smoke run
//
// Per round and side it reports requests/s, p99, the server's CPU time per
// request (utime+stime of its process from /proc, over the run, divided by
// the requests served) and its heap allocations per request (from the
// server's runtime, read on a side listener before and after). Rounds
// alternate framework, plain, framework, plain, so drift on a small, noisy
// machine falls on both sides alike; each figure is the ratio of a round's
// pair, printed as min/median/max over the rounds with its target:
// req/s ratio >= 0.85 and CPU per request ratio <= 1.2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Targets of the issue: the framework serves at least 0.85 of plain
// net/http's requests/s and spends at most 1.2 times its CPU per request.
const (
	rpsTarget = 0.85
	cpuTarget = 1.2
)

func main() {
	os.Exit(benchmark(os.Args[1:], os.Stdout, os.Stderr))
}

// config holds the flags of one run.
type config struct {
	conns    int
	threads  int
	duration time.Duration
	rounds   int
	short    bool
	timeout  time.Duration

	// serve, when set, makes this process one of the two servers
	// (framework or plain) on addr, with its allocation counter on
	// statsAddr; the measuring process starts both.
	serve     string
	addr      string
	statsAddr string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.conns, "c", 32, "wrk connections")
	fs.IntVar(&cfg.threads, "t", 2, "wrk threads")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "duration of one round of one side (whole seconds)")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds per side, alternating framework and plain")
	fs.BoolVar(&cfg.short, "short", false, "smoke run: 3 rounds of 2s per side")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	fs.StringVar(&cfg.serve, "serve", "", "internal: serve one side (framework or plain) on -addr")
	fs.StringVar(&cfg.addr, "addr", "", "internal: address of the served side")
	fs.StringVar(&cfg.statsAddr, "stats-addr", "", "internal: address of the served side's allocation counter")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			cfg.rounds = 3
		}
		if !set["d"] {
			cfg.duration = 2 * time.Second
		}
	}
	switch {
	case cfg.serve != "" && cfg.serve != "framework" && cfg.serve != "plain":
		return config{}, fmt.Errorf("-serve %q: want framework or plain", cfg.serve)
	case cfg.conns < 1 || cfg.conns > 10000:
		return config{}, fmt.Errorf("-c %d: want 1 to 10000", cfg.conns)
	case cfg.threads < 1 || cfg.threads > cfg.conns:
		return config{}, fmt.Errorf("-t %d: want 1 to -c (%d)", cfg.threads, cfg.conns)
	case cfg.rounds < 1 || cfg.rounds > 100:
		return config{}, fmt.Errorf("-rounds %d: want 1 to 100", cfg.rounds)
	case cfg.duration < time.Second || cfg.duration > 5*time.Minute || cfg.duration%time.Second != 0:
		return config{}, fmt.Errorf("-d %s: want whole seconds from 1s to 5m", cfg.duration)
	case cfg.timeout <= 0 || cfg.timeout > time.Hour:
		return config{}, fmt.Errorf("-timeout %s: want more than 0 and at most 1h", cfg.timeout)
	}
	return cfg, nil
}

func benchmark(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "overhead:", err)
		return 2
	}
	if cfg.serve != "" {
		if err := serveSide(cfg); err != nil {
			fmt.Fprintf(stderr, "overhead %s server: %v\n", cfg.serve, err)
			return 1
		}
		return 0
	}
	if err := measure(cfg, args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "overhead:", err)
		return 1
	}
	return 0
}
