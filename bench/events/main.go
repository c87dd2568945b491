// Command events measures the event bus (issue 10) through real `ocis
// server` processes, one node each, every listener on 127.0.0.1:
//
//  1. publish → visible: one user uploads small files one after the other
//     through the proxy; after each upload's answer the benchmark polls
//     `GET /api/v1/activities?limit=1` (every 1 ms, each poll a full
//     request through the proxy) until the newest entry is that upload's
//     file.written. The figure is the time from the upload's answer to
//     the answer that shows it: what the user sees, poll included. p50
//     and p99 over -n events (1000); target p99 < 50 ms.
//  2. upload cost and publish throughput: wrk (an external load
//     generator, its own process) PUTs 1 KiB files through the proxy of
//     three `ocis server` processes, side by side, in interleaved rounds
//     (5: the effect sought is a few per cent, the noise of a shared
//     2-CPU machine about as much), each starting with the next setting:
//     - off: nats in the process, no consumer
//     (OCIS_EXCLUDE_RUN_SERVICES=activity), and storage publishing
//     nothing (OCIS_STORAGE_PUBLISH_EVENTS=false: service.NoPublisher);
//     - publish: the same with storage's publisher on, so that the two
//     differ in the publisher alone;
//     - publish+consume: the default family, activity consuming;
//     - with -no-nats, also no-nats: OCIS_EXCLUDE_RUN_SERVICES=nats, no
//     NATS in the process at all (the baseline of earlier runs).
//     CPU per upload is the process's utime+stime (from /proc) from
//     before the run until the publisher has had every event acknowledged
//     and, with a consumer, until the consumer has handled every one of
//     them, divided by the uploads served. The publisher's cost is
//     publish/off (target <= 1.05, less than 5 % more); it holds
//     storage's Publish, the in-process nats server storing the event in
//     JetStream (file store) and the ack; what NATS costs the process
//     anyway (the idle server, the registry's heartbeats and watches) is
//     in both. Publish throughput is what storage's
//     ocis_events_published_total (events JetStream acknowledged) grew
//     per second of the run, beside wrk's uploads per second.
//
// Usage (from the module root, as it builds ./cmd/ocis):
//
//	go run ./bench/events          # 1000 events, 5 rounds of 10s per setting
//	go run ./bench/events -short   # 200 events, 3 rounds of 3s
//	go run ./bench/events -no-nats # and a process without NATS beside them
//	go run ./bench/events -pprof /tmp/prof  # and CPU profiles of off and publish
//
// It needs wrk (installed with apt-get when missing, as root). Every
// child is killed and the temporary directory removed when it ends, on
// failure and on SIGINT/SIGTERM too.
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
	events   int
	rounds   int
	noNATS   bool
	pprofDir string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var cfg options
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RunFlags.Register(fs, "smoke run: 200 events, 3 rounds of 3s per setting")
	cfg.WrkFlags.Register(fs, 8)
	fs.IntVar(&cfg.events, "n", 1000, "uploads timed from answer to visible in the activity log")
	fs.IntVar(&cfg.rounds, "rounds", 5, "interleaved rounds per setting")
	fs.StringVar(&cfg.pprofDir, "pprof", "", "after the rounds, write 5s CPU profiles of the off and publish processes, each during an extra wrk run, to `dir`")
	fs.BoolVar(&cfg.noNATS, "no-nats", false, "also measure a process without NATS (OCIS_EXCLUDE_RUN_SERVICES=nats), against which off shows what NATS costs")
	set, err := cfg.RunFlags.Parse(fs, args)
	if err != nil {
		return options{}, err
	}
	if cfg.Short {
		if !set["d"] {
			cfg.Duration = 3 * time.Second
		}
		if !set["n"] {
			cfg.events = 200
		}
		if !set["rounds"] {
			cfg.rounds = 3
		}
	}
	if err := cfg.WrkFlags.Validate(); err != nil {
		return options{}, err
	}
	switch {
	case cfg.events < 1 || cfg.events > 100000:
		return options{}, fmt.Errorf("-n %d: want 1 to 100000", cfg.events)
	case cfg.rounds < 3 || cfg.rounds > 100:
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
		return benchkit.FlagsFailed("events", err, stderr)
	}
	run := cfg.RunFlags.Run("events", args)
	run.Stdout, run.Stderr = stdout, stderr
	return run.Measure(func(ctx context.Context, s *benchkit.Session) error {
		b := &bench{cfg: cfg, tmp: s.Tmp, kids: s.Kids, env: s.Env, out: s.Out, log: s.Log}
		return b.measure(ctx)
	})
}
