package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// target is one server under wrk.
type target struct {
	name string
	url  string
	// groups are the process groups charged with the CPU time of a run:
	// the proxy alone, nginx's master and workers, or one `ocis server`.
	groups []int
	// rss, when set, is the process group whose resident memory is
	// sampled during every run.
	rss int
	// metrics, when set, is the /metrics URL of the process under test,
	// whose Go allocation counters are read before and after each run.
	metrics string
	results []benchkit.WrkResult
	peaks   []float64 // MB, per run, when rss is set
	allocs  []float64 // per request, when metrics is set
	allocB  []float64 // bytes per request, when metrics is set
}

// rps is the target's requests/s per round.
func (t *target) rps() []float64 {
	out := make([]float64, len(t.results))
	for i, r := range t.results {
		out[i] = r.RPS
	}
	return out
}

// cpu is the target's CPU time per request per round, in µs.
func (t *target) cpu() []float64 {
	out := make([]float64, len(t.results))
	for i, r := range t.results {
		out[i] = float64(r.CPUPerRequest()) / float64(time.Microsecond)
	}
	return out
}

// ratios divides a's figures by b's, round by round: the pair of one round
// was measured seconds apart, so its ratio holds less of the machine's
// drift than a ratio of medians.
func ratios(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// interleave warms every target up, then runs rounds of wrk against the
// targets in turn (a, b, c, a, b, c, ...) with conns connections, printing
// each run.
func (b *bench) interleave(ctx context.Context, token string, conns int, targets ...*target) error {
	for _, t := range targets {
		if _, _, err := b.wrk(ctx, t, token, conns, time.Second); err != nil {
			return fmt.Errorf("warm up %s: %w", t.name, err)
		}
	}
	for i := range b.cfg.rounds {
		for _, t := range targets {
			var o0, b0 float64
			if t.metrics != "" {
				var err error
				if o0, b0, err = goAllocs(ctx, t.metrics); err != nil {
					return err
				}
			}
			r, peak, err := b.wrk(ctx, t, token, conns, b.cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, t.name, err)
			}
			t.results = append(t.results, r)
			mem := ""
			if t.metrics != "" {
				o1, b1, err := goAllocs(ctx, t.metrics)
				if err != nil {
					return err
				}
				n := float64(r.Requests)
				t.allocs = append(t.allocs, (o1-o0)/n)
				t.allocB = append(t.allocB, (b1-b0)/n)
				mem = fmt.Sprintf("  %.0f allocs/req %.0f B/req", (o1-o0)/n, (b1-b0)/n)
			}
			if t.rss != 0 {
				t.peaks = append(t.peaks, peak)
				mem += fmt.Sprintf("  RSS peak %.1fMB", peak)
			}
			fmt.Fprintf(b.out, "  round %d %-20s %8.0f req/s  p99 %s  server CPU %5.1fµs/req%s%s\n",
				i+1, t.name, r.RPS, benchkit.Millis(r.P99), float64(r.CPUPerRequest())/float64(time.Microsecond), mem, r.SocketNote())
		}
	}
	return nil
}

// wrk runs wrk against t for d with conns connections and the bearer
// token, charging the run's CPU time to t's groups; when t.rss is set it
// samples that group's resident memory every 50ms and returns the peak, in
// MB.
func (b *bench) wrk(ctx context.Context, t *target, token string, conns int, d time.Duration) (benchkit.WrkResult, float64, error) {
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	if t.rss != 0 {
		go func() {
			var max int64
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				if now, _, err := benchkit.GroupRSS(t.rss); err == nil {
					max = maxInt(max, now)
				}
				select {
				case <-stop:
					peak <- max
					return
				case <-tick.C:
				}
			}
		}()
	}
	r, err := benchkit.Wrk(ctx, b.kids, b.env, benchkit.Load{
		URL: t.url, Threads: min(b.cfg.threads, conns), Conns: conns, Duration: d,
		Headers: []string{"Authorization: Bearer " + token},
		Groups:  t.groups,
	})
	close(stop)
	var mb float64
	if t.rss != 0 {
		mb = float64(<-peak) / 1e6
	}
	return r, mb, err
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// goAllocs reads the heap allocations a Go process has made so far,
// objects and bytes, from its Prometheus metrics.
func goAllocs(ctx context.Context, url string) (objects, bytes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", url, err)
	}
	defer resp.Body.Close()
	var haveObjects, haveBytes bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_mallocs_total":
			objects, err = strconv.ParseFloat(value, 64)
			haveObjects = err == nil
		case "go_memstats_alloc_bytes_total":
			bytes, err = strconv.ParseFloat(value, 64)
			haveBytes = err == nil
		}
	}
	if !haveObjects || !haveBytes {
		return 0, 0, fmt.Errorf("%s has no go_memstats_mallocs_total or go_memstats_alloc_bytes_total", url)
	}
	return objects, bytes, sc.Err()
}
