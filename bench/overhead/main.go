// Command overhead measures what the framework costs on a real endpoint
// (issue 2): the same small JSON echo served (a) through pkg/transport and
// pkg/endpoint with the full middleware chain and (b) by a plain net/http
// handler, both over loopback TCP and driven by the same in-process load
// generator. It prints the requests/s and p99 latency of each side and the
// ratio a/b; the target is a ratio of at least 0.85.
//
//	go run ./bench/overhead            # 3 rounds of 5s per side, 16 workers
//	go run ./bench/overhead -short     # 1 round of 1s per side, a smoke run
//
// Rounds alternate a, b, a, b so that drift on a small, noisy machine (CPU
// frequency, other tenants) falls on both sides alike; the figures reported
// are the medians over the rounds. Every answer is checked (status 200 and
// the echoed fields), and the first bad one ends the run with exit status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// target is the ratio framework/plain that issue 2 asks for.
const target = 0.85

func main() {
	if err := measure(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}

// config holds the flags of one run.
type config struct {
	workers    int
	duration   time.Duration
	rounds     int
	short      bool
	cpuprofile string
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	fs.IntVar(&cfg.workers, "c", 16, "concurrent keep-alive workers")
	fs.DurationVar(&cfg.duration, "d", 5*time.Second, "duration of one round of one side")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds per side, alternating framework and plain")
	fs.BoolVar(&cfg.short, "short", false, "smoke run: 1 round of 1s per side")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to `file`; split it with -tagfocus=side=framework|plain|load")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if cfg.short {
		cfg.rounds, cfg.duration = 1, time.Second
	}
	switch {
	case cfg.workers < 1:
		return config{}, fmt.Errorf("-c %d: want at least 1 worker", cfg.workers)
	case cfg.rounds < 1:
		return config{}, fmt.Errorf("-rounds %d: want at least 1", cfg.rounds)
	case cfg.duration <= 0 || cfg.duration > 5*time.Minute:
		return config{}, fmt.Errorf("-d %s: want more than 0 and at most 5m", cfg.duration)
	}
	return cfg, nil
}

// side is one of the two servers under load.
type side struct {
	name    string
	url     string
	results []result
}

func measure(args []string, out io.Writer) (err error) {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	fwAddr, stopFramework, err := startFramework()
	if err != nil {
		return fmt.Errorf("start framework server: %w", err)
	}
	defer func() { err = errors.Join(err, stopFramework()) }()
	plainAddr, stopPlain, err := startPlain()
	if err != nil {
		return fmt.Errorf("start plain server: %w", err)
	}
	defer func() { err = errors.Join(err, stopPlain()) }()

	// One transport for every worker, as a service's client would share
	// one; its idle pool holds a connection per worker and per server, so
	// no request of a round pays for a TCP handshake.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = cfg.workers
	tr.MaxIdleConns = 2 * cfg.workers
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	sides := []*side{
		{name: "framework", url: "http://" + fwAddr + echoPath},
		{name: "plain net/http", url: "http://" + plainAddr + echoPath},
	}
	fmt.Fprintf(out, "overhead: %d workers, %d round(s) of %s per side, GOMAXPROCS=%d, loopback TCP\n", cfg.workers, cfg.rounds, cfg.duration, runtime.GOMAXPROCS(0))

	// A warm-up opens the connections and grows the buffers of both
	// servers before anything is counted.
	warm := min(cfg.duration/5, time.Second)
	for _, s := range sides {
		if _, err := load(client, s.url, cfg.workers, warm); err != nil {
			return fmt.Errorf("warm up %s: %w", s.name, err)
		}
	}
	for i := range cfg.rounds {
		for _, s := range sides {
			r, err := load(client, s.url, cfg.workers, cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, s.name, err)
			}
			s.results = append(s.results, r)
			fmt.Fprintf(out, "  round %d %-15s %8.0f req/s  p99 %s  (%d requests)\n", i+1, s.name, r.rate(), benchkit.Millis(r.p99), r.requests)
		}
		// The ratio of one round's pair, measured seconds apart, shows how
		// much of the spread between rounds is the machine and not the code.
		fmt.Fprintf(out, "  round %d ratio %.2f\n", i+1, sides[0].results[i].rate()/sides[1].results[i].rate())
	}

	fw, plain := summarise(sides[0].results), summarise(sides[1].results)
	ratio := fw.rate / plain.rate
	verdict := ""
	if ratio < target {
		verdict = " BELOW TARGET"
	}
	fmt.Fprintf(out, "overhead: framework %.0f req/s (p99 %s), plain net/http %.0f req/s (p99 %s), ratio %.2f (target >= %.2f)%s\n",
		fw.rate, benchkit.Millis(fw.p99), plain.rate, benchkit.Millis(plain.p99), ratio, target, verdict)
	return nil
}

// summary is the median of a side's rounds.
type summary struct {
	rate float64
	p99  time.Duration
}

func summarise(rs []result) summary {
	rates := make([]float64, len(rs))
	p99s := make([]time.Duration, len(rs))
	for i, r := range rs {
		rates[i], p99s[i] = r.rate(), r.p99
	}
	return summary{rate: benchkit.Median(rates), p99: benchkit.Median(p99s)}
}
