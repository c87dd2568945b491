package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// echoBody is what wrk posts: a users-style request, a small JSON object.
const echoBody = `{"message":"hello from wrk","seq":12345}`

// wrkScript makes wrk send every request as a POST of echoBody.
const wrkScript = `-- Written by bench/overhead.
wrk.method = "POST"
wrk.body = '` + echoBody + `'
wrk.headers["Content-Type"] = "application/json"
`

// serverSide is one of the two server processes and its rounds.
type serverSide struct {
	name      string
	url       string
	statsURL  string
	child     *benchkit.Child
	rps       []float64
	cpu       []time.Duration // per request
	allocs    []float64       // per request
	allocB    []float64       // bytes per request
	p99       []time.Duration
	socketErr bool
}

func measure(cfg config, args []string, stdout, stderr io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	kids := benchkit.NewChildren()
	tmp, err := os.MkdirTemp("", "ocis-bench-overhead-")
	if err != nil {
		return err
	}
	cleanup := func() {
		kids.KillAll()
		_ = os.RemoveAll(tmp)
	}
	defer cleanup()
	defer benchkit.WatchSignals(ctx, cancel, "overhead", stderr, cleanup)()

	if err := benchkit.EnsureDebian(ctx, stderr, []string{"wrk"}, []string{"wrk"}); err != nil {
		return err
	}
	script := filepath.Join(tmp, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	addrs, err := benchkit.FreeAddrs(4)
	if err != nil {
		return err
	}
	env := benchkit.ChildEnv()
	sides := []*serverSide{
		{name: "framework", url: "http://" + addrs[0] + echoPath, statsURL: "http://" + addrs[1] + "/allocs"},
		{name: "plain net/http", url: "http://" + addrs[2] + echoPath, statsURL: "http://" + addrs[3] + "/allocs"},
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	for i, s := range sides {
		mode := "framework"
		if i == 1 {
			mode = "plain"
		}
		cmd := exec.Command(self, "-serve", mode, "-addr", addrs[2*i], "-stats-addr", addrs[2*i+1])
		cmd.Env = env
		if s.child, err = kids.Start(s.name+" server", cmd); err != nil {
			return err
		}
		if err := awaitEcho(ctx, hc, s); err != nil {
			return err
		}
	}

	load, _ := benchkit.LoadAverage()
	fmt.Fprintf(stdout, "overhead: %d CPUs; each side its own process (GOMAXPROCS=%d); wrk -t%d -c%d -d%s POST %d-byte JSON, %d round(s) alternating framework, plain; load average %.2f at start\n",
		goruntime.NumCPU(), goruntime.NumCPU(), cfg.threads, cfg.conns, cfg.duration, len(echoBody), cfg.rounds, load)
	wrk := func(s *serverSide, d time.Duration) (benchkit.WrkResult, error) {
		return benchkit.Wrk(ctx, kids, env, benchkit.Load{
			URL: s.url, Threads: cfg.threads, Conns: cfg.conns, Duration: d, Script: script,
			Groups: []int{s.child.Pid()},
		})
	}
	// A warm-up per side opens the connections and grows every buffer
	// and pool before anything counts.
	for _, s := range sides {
		if _, err := wrk(s, time.Second); err != nil {
			return fmt.Errorf("warm up %s: %w", s.name, err)
		}
	}
	var rpsRatio, cpuRatio []float64
	for i := range cfg.rounds {
		for _, s := range sides {
			o0, b0, err := readAllocs(ctx, hc, s.statsURL)
			if err != nil {
				return err
			}
			r, err := wrk(s, cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, s.name, err)
			}
			o1, b1, err := readAllocs(ctx, hc, s.statsURL)
			if err != nil {
				return err
			}
			n := float64(r.Requests)
			s.rps = append(s.rps, r.RPS)
			s.cpu = append(s.cpu, r.CPUPerRequest())
			s.allocs = append(s.allocs, float64(o1-o0)/n)
			s.allocB = append(s.allocB, float64(b1-b0)/n)
			s.p99 = append(s.p99, r.P99)
			s.socketErr = s.socketErr || r.SocketErrors != ""
			fmt.Fprintf(stdout, "  round %d %-15s %8.0f req/s  p99 %s  CPU %5.1fµs/req  %4.1f allocs/req  %5.0f B/req%s\n",
				i+1, s.name, r.RPS, benchkit.Millis(r.P99), micros(r.CPUPerRequest()), float64(o1-o0)/n, float64(b1-b0)/n, r.SocketNote())
		}
		fw, pl := sides[0], sides[1]
		rpsRatio = append(rpsRatio, fw.rps[i]/pl.rps[i])
		cpuRatio = append(cpuRatio, float64(fw.cpu[i])/float64(pl.cpu[i]))
		fmt.Fprintf(stdout, "  round %d framework/plain: req/s %.2f, CPU per request %.2f\n", i+1, rpsRatio[i], cpuRatio[i])
	}

	for _, s := range sides {
		fmt.Fprintf(stdout, "overhead: %-15s req/s %s; CPU per request µs %s; allocs/req %s; B/req %s\n", s.name,
			benchkit.SpreadOf(s.rps).Format("%.0f"), benchkit.SpreadOf(microsAll(s.cpu)).Format("%.1f"),
			benchkit.SpreadOf(s.allocs).Format("%.1f"), benchkit.SpreadOf(s.allocB).Format("%.0f"))
	}
	rt := benchkit.Target{Value: rpsTarget}
	ct := benchkit.Target{Value: cpuTarget, AtMost: true}
	fmt.Fprintf(stdout, "overhead: framework/plain req/s %s; %s\n", benchkit.SpreadOf(rpsRatio).Format("%.2f"), rt.Judge(benchkit.SpreadOf(rpsRatio)))
	fmt.Fprintf(stdout, "overhead: framework/plain CPU per request %s; %s\n", benchkit.SpreadOf(cpuRatio).Format("%.2f"), ct.Judge(benchkit.SpreadOf(cpuRatio)))
	load, _ = benchkit.LoadAverage()
	fmt.Fprintf(stdout, "overhead: load average %.2f at the end; command: go run ./bench/overhead %s\n", load, strings.Join(args, " "))
	return nil
}

// awaitEcho posts one echo to a side until it answers, for up to 10s, and
// checks the answer, so wrk is only trusted with a server that echoes.
func awaitEcho(ctx context.Context, hc *http.Client, s *serverSide) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := checkEcho(ctx, hc, s.url)
		if err == nil {
			return nil
		}
		select {
		case <-s.child.Done():
			return fmt.Errorf("%s exited: %s", s.name, s.child.Output())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
}

func checkEcho(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(echoBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var want, got EchoResponse
	_ = json.Unmarshal([]byte(echoBody), &want)
	want.Length = len(want.Message)
	if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != http.StatusOK || got != want {
		return fmt.Errorf("POST %s: %s %q, want 200 with the echo", url, resp.Status, bytes.TrimSpace(raw))
	}
	return nil
}

// readAllocs reads a side's cumulative heap allocations.
func readAllocs(ctx context.Context, hc *http.Client, url string) (objects, bytes uint64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read allocations: %w", err)
	}
	defer resp.Body.Close()
	if _, err := fmt.Fscan(resp.Body, &objects, &bytes); err != nil {
		return 0, 0, fmt.Errorf("read allocations: %w", err)
	}
	return objects, bytes, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func microsAll(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = micros(d)
	}
	return out
}
