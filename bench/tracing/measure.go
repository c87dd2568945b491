package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/services"
)

// costTarget bounds CPU per request at 1% sampling, as a ratio to off.
const costTarget = 1.10

// setting is one `ocis server` under test and its runs.
type setting struct {
	name    string
	env     []string // OCIS_TRACING_*
	sink    *sinkCount
	ch      *benchkit.Child
	logPath string
	proxy   string // the proxy's base URL
	token   string // a bearer token of its admin
	results []benchkit.WrkResult
}

func (s *setting) figures(f func(benchkit.WrkResult) float64) []float64 {
	out := make([]float64, len(s.results))
	for i, r := range s.results {
		out[i] = f(r)
	}
	return out
}

func rps(r benchkit.WrkResult) float64 { return r.RPS }
func cpu(r benchkit.WrkResult) float64 {
	return float64(r.CPUPerRequest()) / float64(time.Microsecond)
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

func (b *bench) measure(ctx context.Context) error {
	if err := benchkit.EnsureDebian(ctx, b.log, []string{"wrk"}, []string{"wrk"}); err != nil {
		return err
	}
	b.ocis = filepath.Join(b.tmp, "ocis")
	if err := benchkit.Build(ctx, b.log, b.ocis, "./cmd/ocis"); err != nil {
		return err
	}
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.close()
	settings := []*setting{
		{name: "off", env: []string{"OCIS_TRACING_EXPORTER=none"}},
		{name: "1%", sink: sink.count("1pct"), env: []string{"OCIS_TRACING_EXPORTER=otlp", "OCIS_TRACING_SAMPLE_RATIO=0.01",
			"OCIS_TRACING_ENDPOINT=" + sink.url + "/1pct/v1/traces"}},
		{name: "100%", sink: sink.count("100pct"), env: []string{"OCIS_TRACING_EXPORTER=otlp", "OCIS_TRACING_SAMPLE_RATIO=1",
			"OCIS_TRACING_ENDPOINT=" + sink.url + "/100pct/v1/traces"}},
	}
	for _, s := range settings {
		if err := b.start(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	load0, _ := benchkit.LoadAverage()
	fmt.Fprintf(b.out, "small GETs through the proxy: one `ocis server` per setting (colocated storage), 1 KiB file, OCIS_LOG_LEVEL=warn; wrk -t%d -c%d -d%s, %d rounds interleaved; CPU is each process's\n",
		b.cfg.Threads, b.cfg.Conns, b.cfg.Duration, b.cfg.rounds)
	for _, s := range settings { // warm up
		if _, err := b.wrk(ctx, s, time.Second); err != nil {
			return fmt.Errorf("warm up %s: %w", s.name, err)
		}
	}
	for round := range b.cfg.rounds {
		for _, s := range settings {
			r, err := b.wrk(ctx, s, b.cfg.Duration)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.results = append(s.results, r)
			fmt.Fprintf(b.out, "  round %d %-5s %8.0f req/s  p50 %s  p99 %s  CPU/request %6.1f µs%s\n",
				round+1, s.name, r.RPS, benchkit.Millis(r.P50), benchkit.Millis(r.P99), cpu(r), r.SocketNote())
		}
	}
	load1, _ := benchkit.LoadAverage()
	off := settings[0]
	tg := benchkit.Target{Value: costTarget, AtMost: true}
	fmt.Fprintf(b.out, "summary (load average %.2f at start, %.2f at end; wrk shares the CPUs with the servers):\n", load0, load1)
	fmt.Fprintf(b.out, "  tracing off: %s req/s, CPU per request %s µs\n",
		benchkit.SpreadOf(off.figures(rps)).Format("%.0f"), benchkit.SpreadOf(off.figures(cpu)).Format("%.1f"))
	for _, s := range settings[1:] {
		cost := benchkit.SpreadOf(ratios(s.figures(cpu), off.figures(cpu)))
		thru := benchkit.SpreadOf(ratios(s.figures(rps), off.figures(rps)))
		verdict := "(no target)"
		if s.name == "1%" {
			verdict = tg.Judge(cost)
		}
		fmt.Fprintf(b.out, "  tracing %s: CPU per request %s µs; /off %s %s\n", s.name,
			benchkit.SpreadOf(s.figures(cpu)).Format("%.1f"), cost.Format("%.3f"), verdict)
		fmt.Fprintf(b.out, "  tracing %s: req/s /off %s; spans exported in %d batches, %d KiB\n", s.name,
			thru.Format("%.3f"), s.sink.batches.Load(), s.sink.bytes.Load()>>10)
	}
	for _, s := range settings {
		if _, err := s.ch.Stop(syscall.SIGTERM, 40*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w; log:\n%s", s.name, err, benchkit.FileTail(s.logPath))
		}
	}
	return nil
}

// wrk runs one load of d against s's proxy.
func (b *bench) wrk(ctx context.Context, s *setting, d time.Duration) (benchkit.WrkResult, error) {
	return benchkit.Wrk(ctx, b.kids, b.env, benchkit.Load{
		URL: s.proxy + smallURL, Threads: b.cfg.Threads, Conns: b.cfg.Conns, Duration: d,
		Headers: []string{"Authorization: Bearer " + s.token}, Groups: []int{s.ch.Pid()},
	})
}

const (
	smallURL = "/api/v1/files/bench/small.bin"
	adminPW  = "bench-Pass-1"
	secret   = "bench-secret-0123456789abcdefghij"
)

// start runs `ocis server` for s on its own data dir and ports, waits for
// the proxy, logs in and uploads the file the GETs fetch.
func (b *bench) start(ctx context.Context, s *setting) error {
	cat := services.Catalogue()
	free, err := benchkit.FreeAddrs(1 + 2*len(cat))
	if err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "data-"+strings.TrimSuffix(s.name, "%"))
	env := append(b.env[:len(b.env):len(b.env)], s.env...)
	env = append(env,
		"OCIS_BASE_DATA_PATH="+dir, "OCIS_LOG_LEVEL=warn", "OCIS_JWT_SECRET="+secret,
		"OCIS_USERS_ADMIN_PASSWORD="+adminPW, "OCIS_USERS_BCRYPT_COST=4",
		"OCIS_NODE=bench-"+strings.TrimSuffix(s.name, "%"), "OCIS_RUNTIME_ADDR="+free[0])
	var proxyAddr, proxyDebug string
	for i, d := range cat {
		env = append(env, config.EnvName(d.Name, benchkit.PrimaryAddrFlag(d))+"="+free[1+2*i], config.EnvName(d.Name, "debug-addr")+"="+free[2+2*i])
		if d.Name == "proxy" {
			proxyAddr, proxyDebug = free[1+2*i], free[2+2*i]
		}
	}
	s.logPath = filepath.Join(b.tmp, "ocis-"+strings.TrimSuffix(s.name, "%")+".log")
	if s.ch, err = b.kids.StartLogged("ocis server "+s.name, s.logPath, env, b.ocis, "server"); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if err := benchkit.AwaitStatus(ctx, hc, "http://"+proxyDebug+"/readyz", nil, http.StatusOK, 20*time.Millisecond, 40*time.Second, s.ch.Done()); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, benchkit.FileTail(s.logPath))
	}
	s.proxy = "http://" + proxyAddr
	// Login and upload through the proxy, retried while the services
	// behind it come up.
	var tok string
	deadline := time.Now().Add(40 * time.Second)
	for {
		tok, err = benchkit.Login(ctx, hc, s.proxy, "admin", adminPW)
		if err == nil {
			err = upload(ctx, hc, s.proxy, tok)
		}
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%w; log:\n%s", err, benchkit.FileTail(s.logPath))
	}
	s.token = tok
	fmt.Fprintf(b.log, "ocis server (tracing %s) ready\n", s.name)
	return nil
}

func upload(ctx context.Context, hc *http.Client, base, tok string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+smallURL, bytes.NewReader(bytes.Repeat([]byte("abcdefgh"), 128)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload through the proxy: status %d", resp.StatusCode)
	}
	return nil
}

// sink is an OTLP/HTTP receiver that reads every batch and drops it,
// counting batches and bytes per first path segment.
type sink struct {
	url    string
	srv    *http.Server
	mu     sync.Mutex
	counts map[string]*sinkCount
}

type sinkCount struct{ batches, bytes atomic.Int64 }

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), counts: map[string]*sinkCount{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		c := s.count(seg)
		c.batches.Add(1)
		c.bytes.Add(n)
		// An empty ExportTraceServiceResponse: everything accepted.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) count(name string) *sinkCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[name]
	if !ok {
		c = &sinkCount{}
		s.counts[name] = c
	}
	return c
}

func (s *sink) close() { _ = s.srv.Close() }
