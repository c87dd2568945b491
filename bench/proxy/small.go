package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

// Targets of the issue for small GETs.
const (
	smallVsNginx  = 1.0
	smallVsDirect = 0.6
)

// smallPath is the file the small GETs fetch; smallSize its length.
const (
	smallPath = "bench/small.bin"
	smallSize = 1 << 10
)

// filesPrefix is where the storage routes begin.
const filesPrefix = "/api/v1/files/"

// target is one server under wrk.
type target struct {
	name    string
	key     string // a name for files
	url     string
	results []benchkit.WrkResult
}

// smallResult is what the small GET benchmark leaves for the run at log
// level info and for the summary.
type smallResult struct {
	line     string
	token    string
	body     []byte
	proxyRPS float64
}

// smallGETs uploads a 1 KiB file and measures wrk's GETs of it from the
// storage service directly, through the ocis proxy and through nginx in
// front of the same storage instance, in interleaved rounds.
func (b *bench) smallGETs(ctx context.Context, srv *ocisServer) (*smallResult, error) {
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	token, err := srv.login(ctx, hc)
	if err != nil {
		return nil, err
	}
	body := smallContent()
	sc, err := storage.NewClient(srv.url(storage.Name), hc)
	if err != nil {
		return nil, err
	}
	if _, _, err := sc.Upload(withToken(ctx, token), smallPath, bytes.NewReader(body), int64(len(body)), storage.UploadOptions{}); err != nil {
		return nil, fmt.Errorf("upload %s: %w", smallPath, err)
	}

	free, err := benchkit.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	nginx, err := b.startNginx(free[0], srv.addrs.http[storage.Name])
	if err != nil {
		return nil, err
	}
	defer func() {
		// SIGQUIT is nginx's graceful stop; the group is killed after it
		// in any case.
		_, _ = nginx.Stop(syscall.SIGQUIT, 10*time.Second)
	}()
	auth := http.Header{"Authorization": {"Bearer " + token}}
	if err := benchkit.AwaitStatus(ctx, hc, "http://"+free[0]+filesPrefix+smallPath, auth, http.StatusOK, 20*time.Millisecond, 10*time.Second, nginx.Done()); err != nil {
		return nil, fmt.Errorf("nginx: %w; output:\n%s\nerror.log:\n%s", err, nginx.Output(), benchkit.FileTail(filepath.Join(b.tmp, "nginx", "error.log")))
	}

	targets := []*target{
		{name: "direct", key: "direct", url: srv.url(storage.Name) + filesPrefix + smallPath},
		{name: "ocis proxy", key: "proxy", url: srv.url(proxy.Name) + filesPrefix + smallPath},
		{name: "nginx", key: "nginx", url: "http://" + free[0] + filesPrefix + smallPath},
	}
	for _, t := range targets {
		if err := checkGET(ctx, hc, t.url, token, body); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}

	fmt.Fprintf(b.out, "small GETs: %d-byte file, wrk -t%d -c%d -d%s --latency, %d round(s) interleaved direct, ocis proxy, nginx; medians\n",
		len(body), b.cfg.threads, b.cfg.conns, b.cfg.duration, b.cfg.rounds)
	// ocis inherits GOMAXPROCS from the environment, else uses every CPU.
	procs := strconv.Itoa(goruntime.NumCPU())
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		procs = v
	}
	fmt.Fprintf(b.out, "small GETs: CPU budget: nginx worker_processes %d, ocis GOMAXPROCS %s, on %d CPUs; wrk and every server share those CPUs\n",
		b.cfg.nginxWorkers, procs, goruntime.NumCPU())
	// A short warm-up per target opens the connections and lets every
	// server grow its buffers and pools before anything counts.
	for _, t := range targets {
		if _, err := b.wrk(ctx, t.url, token, time.Second); err != nil {
			return nil, fmt.Errorf("warm up %s: %w", t.name, err)
		}
	}
	for i := range b.cfg.rounds {
		for _, t := range targets {
			r, err := b.wrk(ctx, t.url, token, b.cfg.duration)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", i+1, t.name, err)
			}
			t.results = append(t.results, r)
			fmt.Fprintf(b.out, "  round %d %-10s %8.0f req/s  p99 %s%s\n", i+1, t.name, r.RPS, benchkit.Millis(r.P99), r.SocketNote())
		}
	}
	if b.cfg.pprofDir != "" {
		if err := b.profile(ctx, srv, token, "", targets[0], targets[1]); err != nil {
			return nil, err
		}
	}

	direct, prox, ngx := summarise(targets[0]), summarise(targets[1]), summarise(targets[2])
	vsNginx, vsDirect := prox.rps/ngx.rps, prox.rps/direct.rps
	line := fmt.Sprintf("small GETs: direct %.0f req/s (p99 %s), ocis proxy %.0f req/s (p99 %s), nginx %.0f req/s (p99 %s); proxy/nginx %.2f (target >= %.1f)%s, proxy/direct %.2f (target >= %.1f)%s",
		direct.rps, benchkit.Millis(direct.p99), prox.rps, benchkit.Millis(prox.p99), ngx.rps, benchkit.Millis(ngx.p99),
		vsNginx, smallVsNginx, benchkit.Verdict(vsNginx >= smallVsNginx), vsDirect, smallVsDirect, benchkit.Verdict(vsDirect >= smallVsDirect))
	fmt.Fprintln(b.out, line)
	return &smallResult{line: line, token: token, body: body, proxyRPS: prox.rps}, nil
}

// infoLevel restarts ocis on the same data dir and addresses with
// OCIS_LOG_LEVEL=info, so that the proxy writes its access log, and
// measures the proxy once more.
func (b *bench) infoLevel(ctx context.Context, warn *ocisServer, small *smallResult) (string, error) {
	if err := warn.stop(); err != nil {
		return "", fmt.Errorf("stop ocis at log level warn: %w", err)
	}
	srv, err := b.startOcis(ctx, warn.addrs, "info", b.cfg.pprofDir != "")
	if err != nil {
		return "", err
	}
	defer srv.stop()
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	url := srv.url(proxy.Name) + filesPrefix + smallPath
	if err := checkGET(ctx, hc, url, small.token, small.body); err != nil {
		return "", fmt.Errorf("ocis proxy: %w", err)
	}
	if _, err := b.wrk(ctx, url, small.token, time.Second); err != nil {
		return "", fmt.Errorf("warm up: %w", err)
	}
	before := fileSize(srv.logPath)
	r, err := b.wrk(ctx, url, small.token, b.cfg.duration)
	if err != nil {
		return "", err
	}
	logged := fileSize(srv.logPath) - before
	if b.cfg.pprofDir != "" {
		if err := b.profile(ctx, srv, small.token, "-info", &target{name: "ocis proxy", key: "proxy", url: url}); err != nil {
			return "", err
		}
	}
	line := fmt.Sprintf("small GETs at OCIS_LOG_LEVEL=info (access log on, %.1f MB written to a file in the run): ocis proxy %.0f req/s (p99 %s), 1 run; %.2f of the proxy at warn%s",
		float64(logged)/1e6, r.RPS, benchkit.Millis(r.P99), r.RPS/small.proxyRPS, r.SocketNote())
	fmt.Fprintln(b.out, line)
	if err := srv.stop(); err != nil {
		return "", fmt.Errorf("stop ocis at log level info: %w", err)
	}
	return line, nil
}

// checkGET fetches url once as the holder of token and wants a 200 with
// body, before wrk is trusted with the target.
func checkGET(ctx context.Context, hc *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200: %s", url, resp.StatusCode, strings.TrimSpace(string(got)))
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("GET %s: body of %d bytes differs from the %d uploaded", url, len(got), len(body))
	}
	return nil
}

// smallContent is the 1 KiB file: printable and the same on every run.
func smallContent() []byte {
	b := make([]byte, smallSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
