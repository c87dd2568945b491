package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// Targets of issue 10.
const (
	visibleP99Target = 50 * time.Millisecond
	// costTarget bounds CPU per upload with the publisher, as a ratio to
	// the same upload without: less than 5 % more.
	costTarget = 1.05
)

// warmEvents are uploaded and waited for before the timed ones, so that
// the first timed event does not pay for the stream's and the consumer's
// first use.
const warmEvents = 20

// run is one wrk run against one server.
type run struct {
	wrk benchkit.WrkResult
	// cpu is the server's CPU time from before the run until every event
	// of it was acknowledged (and handled, with a consumer).
	cpu time.Duration
	// acked is how many events JetStream acknowledged to storage's
	// publisher during the run itself; handled, by the activity consumer.
	acked, handled float64
	// drain is how long after wrk ended the publisher (and the consumer)
	// took to finish the run's events.
	drain time.Duration
}

func (r run) cpuPerUpload() float64 {
	return float64(r.cpu) / float64(r.wrk.Requests) / float64(time.Microsecond)
}

func (b *bench) measure(ctx context.Context) error {
	if err := benchkit.EnsureDebian(ctx, b.log, []string{"wrk"}, []string{"wrk"}); err != nil {
		return err
	}
	b.ocis = filepath.Join(b.tmp, "ocis")
	if err := benchkit.Build(ctx, b.log, b.ocis, "./cmd/ocis"); err != nil {
		return err
	}
	script := filepath.Join(b.tmp, "put.lua")
	if err := os.WriteFile(script, []byte(putScript), 0o600); err != nil {
		return err
	}
	// off and publish differ in storage's publisher alone: both run nats
	// (idle but for the registry) and no consumer.
	off := &server{name: "off", env: []string{"OCIS_EXCLUDE_RUN_SERVICES=activity", "OCIS_STORAGE_PUBLISH_EVENTS=false"}}
	pub := &server{name: "publish", env: []string{"OCIS_EXCLUDE_RUN_SERVICES=activity"}}
	full := &server{name: "publish+consume"}
	servers := []*server{off, pub, full}
	if b.cfg.noNATS {
		servers = append(servers, &server{name: "no-nats", env: []string{"OCIS_EXCLUDE_RUN_SERVICES=nats"}})
	}
	for _, s := range servers {
		if err := b.start(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	load0, _ := benchkit.LoadAverage()
	lat, err := b.visible(ctx, full)
	if err != nil {
		return err
	}
	load1, _ := benchkit.LoadAverage()
	xs := make([]float64, len(lat))
	for i, d := range lat {
		xs[i] = float64(d)
	}
	p50, p99, worst := time.Duration(benchkit.Median(xs)), time.Duration(benchkit.Percentile(xs, 99)), time.Duration(benchkit.Percentile(xs, 100))
	fmt.Fprintf(b.out, "publish → visible: %d uploads (1 KiB, one user, one at a time) through the proxy of one `ocis server` (default family), after %d untimed; from the upload's answer to the first GET /api/v1/activities?limit=1 (polled every 1ms) whose newest entry is its file.written; load average %.2f at start, %.2f at end\n",
		len(lat), warmEvents, load0, load1)
	fmt.Fprintf(b.out, "  p50 %s, p99 %s, max %s; target p99 < %s:%s\n",
		benchkit.Millis(p50), benchkit.Millis(p99), benchkit.Millis(worst), visibleP99Target, benchkit.Verdict(p99 < visibleP99Target))

	load0, _ = benchkit.LoadAverage()
	fmt.Fprintf(b.out, "uploads under load: wrk -t%d -c%d -d%s PUTs of 1 KiB (64 paths per thread, replaced) through the proxy, %d rounds interleaved, each starting with the next setting; CPU is the server process's until its events are acked (and consumed)\n",
		b.cfg.Threads, b.cfg.Conns, b.cfg.Duration, b.cfg.rounds)
	for _, s := range servers { // warm up
		if _, err := b.load(ctx, s, script, time.Second); err != nil {
			return fmt.Errorf("warm up %s: %w", s.name, err)
		}
	}
	for round := range b.cfg.rounds {
		// Each round starts with the next setting, so that none always
		// runs right after the same other one.
		for k := range servers {
			s := servers[(round+k)%len(servers)]
			r, err := b.load(ctx, s, script, b.cfg.Duration)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.runs = append(s.runs, r)
			fmt.Fprintf(b.out, "  round %d %-15s %7.0f uploads/s  p50 %s  p99 %s  CPU/upload %6.1f µs  acked %6.0f/s  drained %s after%s\n",
				round+1, s.name, r.wrk.RPS, benchkit.Millis(r.wrk.P50), benchkit.Millis(r.wrk.P99), r.cpuPerUpload(),
				r.acked/b.cfg.Duration.Seconds(), benchkit.CoarseMillis(r.drain), r.wrk.SocketNote())
		}
	}
	load1, _ = benchkit.LoadAverage()
	if b.cfg.pprofDir != "" {
		for _, s := range []*server{off, pub} {
			if err := b.profile(ctx, s, script); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(b.out, "summary (load average %.2f at start, %.2f at end; wrk shares the CPUs with the servers):\n", load0, load1)
	for _, s := range servers {
		fmt.Fprintf(b.out, "  %-15s uploads/s %s; CPU per upload %s µs\n", s.name,
			benchkit.SpreadOf(figures(s, func(r run) float64 { return r.wrk.RPS })).Format("%.0f"),
			benchkit.SpreadOf(figures(s, run.cpuPerUpload)).Format("%.1f"))
	}
	tg := benchkit.Target{Value: costTarget, AtMost: true, Verb: "%.2f"}
	cost := benchkit.SpreadOf(ratios(figures(pub, run.cpuPerUpload), figures(off, run.cpuPerUpload)))
	fmt.Fprintf(b.out, "  publisher's cost, CPU per upload publish/off (1.05 = 5%% more): %s %s\n", cost.Format("%.3f"), tg.Judge(cost))
	withConsumer := benchkit.SpreadOf(ratios(figures(full, run.cpuPerUpload), figures(off, run.cpuPerUpload)))
	fmt.Fprintf(b.out, "  publisher and consumer in the same process, CPU per upload publish+consume/off: %s (no target)\n", withConsumer.Format("%.3f"))
	if b.cfg.noNATS {
		noNATS := servers[len(servers)-1]
		fmt.Fprintf(b.out, "  what NATS costs the process with storage's publisher off, CPU per upload off/no-nats: %s (no target)\n",
			benchkit.SpreadOf(ratios(figures(off, run.cpuPerUpload), figures(noNATS, run.cpuPerUpload))).Format("%.3f"))
		fmt.Fprintf(b.out, "  publish/no-nats, the baseline before it was like for like: %s (no target)\n",
			benchkit.SpreadOf(ratios(figures(pub, run.cpuPerUpload), figures(noNATS, run.cpuPerUpload))).Format("%.3f"))
	}
	perSec := func(r run) float64 { return r.acked / b.cfg.Duration.Seconds() }
	fmt.Fprintf(b.out, "  publish throughput (events JetStream acked to storage's publisher per second of the run), no consumer: %s; consumer attached: %s\n",
		benchkit.SpreadOf(figures(pub, perSec)).Format("%.0f"), benchkit.SpreadOf(figures(full, perSec)).Format("%.0f"))
	fmt.Fprintf(b.out, "  consumer: handled %s events/s during the run, drained the rest %s ms after it\n",
		benchkit.SpreadOf(figures(full, func(r run) float64 { return r.handled / b.cfg.Duration.Seconds() })).Format("%.0f"),
		benchkit.SpreadOf(figures(full, func(r run) float64 { return float64(r.drain) / float64(time.Millisecond) })).Format("%.0f"))
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	for _, s := range []*server{pub, full} {
		dropped, err := metric(ctx, hc, s.debug["storage"], "ocis_events_dropped_total")
		if err != nil {
			return err
		}
		if dropped > 0 {
			fmt.Fprintf(b.out, "  %s: storage's publisher dropped %.0f events (ocis_events_dropped_total)\n", s.name, dropped)
		}
	}
	for _, s := range servers {
		if _, err := s.ch.Stop(syscall.SIGTERM, 40*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w; log:\n%s", s.name, err, benchkit.FileTail(s.logPath))
		}
	}
	return nil
}

func figures(s *server, f func(run) float64) []float64 {
	out := make([]float64, len(s.runs))
	for i, r := range s.runs {
		out[i] = f(r)
	}
	return out
}

// ratios divides a's figures by b's round by round: the runs of one round
// were seconds apart, so their ratio holds less of the machine's drift.
func ratios(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// putScript makes wrk PUT 1 KiB to one of 64 paths per thread in turn, so
// that each upload replaces a file and publishes file.written.
const putScript = `
local body = string.rep("abcdefgh", 128)
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/api/v1/files/bench/w" .. (n % 64) .. ".bin", nil, body)
end
`

// visible times cfg.events uploads from answer to visible in the
// uploader's activity log.
func (b *bench) visible(ctx context.Context, s *server) ([]time.Duration, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	body := []byte(strings.Repeat("abcdefgh", 128))
	var out []time.Duration
	for i := range warmEvents + b.cfg.events {
		path := fmt.Sprintf("bench/e%d.bin", i)
		answered, err := put(ctx, hc, s.proxy, s.token, "/api/v1/files/"+path, body)
		if err != nil {
			return nil, err
		}
		seen, err := awaitActivity(ctx, hc, s, path, answered.Add(10*time.Second))
		if err != nil {
			return nil, err
		}
		if i >= warmEvents {
			out = append(out, seen.Sub(answered))
		}
	}
	return out, nil
}

// awaitActivity polls the newest entry of the caller's activity log until
// it is the file.written of path, and returns when that answer was read.
func awaitActivity(ctx context.Context, hc *http.Client, s *server, path string, deadline time.Time) (time.Time, error) {
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.proxy+"/api/v1/activities?limit=1", nil)
		if err != nil {
			return time.Time{}, err
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := hc.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		var page struct {
			Activities []struct {
				Type    string `json:"type"`
				Subject string `json:"subject"`
			} `json:"activities"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		now := time.Now()
		if err != nil || resp.StatusCode != http.StatusOK {
			return time.Time{}, fmt.Errorf("GET /api/v1/activities: status %d, %v", resp.StatusCode, err)
		}
		if len(page.Activities) > 0 {
			a := page.Activities[0]
			if a.Type == "file.written" && strings.TrimPrefix(a.Subject, "/") == path {
				return now, nil
			}
			last = a.Type + " " + a.Subject
		}
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("upload of %s not in the activity log 10s after its answer (newest: %q)", path, last)
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// load runs wrk for d against s and waits, after it, until storage's
// publisher has had every upload's event acknowledged and, when s runs
// the activity service, until it has handled them; the CPU time is s's
// from before the run to then.
func (b *bench) load(ctx context.Context, s *server, script string, d time.Duration) (run, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	publishes := s.name == "publish" || s.name == "publish+consume"
	consumes := s.name == "publish+consume"
	counts := func() (acked, handled float64, err error) {
		if publishes {
			if acked, err = metric(ctx, hc, s.debug["storage"], "ocis_events_published_total"); err != nil {
				return 0, 0, err
			}
		}
		if consumes {
			if handled, err = metric(ctx, hc, s.debug["activity"], "ocis_events_handled_total", `result="ack"`); err != nil {
				return 0, 0, err
			}
		}
		return acked, handled, nil
	}
	acked0, handled0, err := counts()
	if err != nil {
		return run{}, err
	}
	cpu0, err := benchkit.GroupCPU(s.ch.Pid())
	if err != nil {
		return run{}, err
	}
	w, err := benchkit.Wrk(ctx, b.kids, b.env, benchkit.Load{
		URL: s.proxy, Threads: b.cfg.Threads, Conns: b.cfg.Conns, Duration: d,
		Headers: []string{"Authorization: Bearer " + s.token}, Script: script,
	})
	if err != nil {
		return run{}, err
	}
	ended := time.Now()
	acked1, handled1, err := counts()
	if err != nil {
		return run{}, err
	}
	r := run{wrk: w, acked: acked1 - acked0, handled: handled1 - handled0}
	// Every upload of the run publishes one event.
	want := float64(w.Requests)
	deadline := ended.Add(time.Minute)
	for {
		acked, handled, err := counts()
		if err != nil {
			return run{}, err
		}
		if (!publishes || acked-acked0 >= want) && (!consumes || handled-handled0 >= want) {
			break
		}
		if time.Now().After(deadline) {
			return run{}, fmt.Errorf("a minute after the run, %.0f of %.0f events acked and %.0f handled", acked-acked0, want, handled-handled0)
		}
		// Each poll scrapes /metrics, which costs the server CPU: not
		// too often.
		time.Sleep(25 * time.Millisecond)
	}
	r.drain = time.Since(ended)
	cpu1, err := benchkit.GroupCPU(s.ch.Pid())
	if err != nil {
		return run{}, err
	}
	r.cpu = cpu1 - cpu0
	return r, nil
}
