package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// profileSeconds is the length of one CPU profile.
const profileSeconds = 5

// profile captures a CPU profile of the ocis process during an extra wrk
// run against each target, outside the measured rounds, into
// <-pprof>/<key><suffix>.pprof. Of direct and proxy, the difference is what
// the proxy costs. ocis runs every service in one process, so one profile
// holds the proxy and the storage behind it.
func (b *bench) profile(ctx context.Context, srv *ocisServer, token, suffix string, targets ...*target) error {
	if err := os.MkdirAll(b.cfg.pprofDir, 0o755); err != nil {
		return err
	}
	url := "http://" + srv.addrs.debug[proxy.Name] + fmt.Sprintf("/debug/pprof/profile?seconds=%d", profileSeconds)
	for _, t := range targets {
		path := filepath.Join(b.cfg.pprofDir, t.key+suffix+".pprof")
		// wrk runs a second before the profile starts and a second after
		// it ends, so the profile sees a steady load only.
		type wrkDone struct {
			r   benchkit.WrkResult
			err error
		}
		done := make(chan wrkDone, 1)
		go func() {
			r, err := b.wrk(ctx, t.url, token, (profileSeconds+2)*time.Second)
			done <- wrkDone{r, err}
		}()
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			<-done
			return ctx.Err()
		}
		perr := fetchProfile(ctx, url, path)
		w := <-done
		if perr != nil {
			return fmt.Errorf("profile %s: %w", t.name, perr)
		}
		if w.err != nil {
			return fmt.Errorf("profile %s: %w", t.name, w.err)
		}
		fmt.Fprintf(b.out, "  profiled %-10s %8.0f req/s  p99 %s (not counted) -> %s\n", t.name, w.r.RPS, benchkit.Millis(w.r.P99), path)
	}
	fmt.Fprintf(b.out, "  read them with: go tool pprof -top -cum -nodecount=60 %s\n", filepath.Join(b.cfg.pprofDir, targets[len(targets)-1].key+suffix+".pprof"))
	return nil
}

// fetchProfile saves the CPU profile that url serves to path.
func fetchProfile(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, (profileSeconds+10)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
