package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// profileSeconds is the length of one CPU profile.
const profileSeconds = 5

// profile captures a CPU profile of the process serving debugAddr during
// an extra wrk run against t, outside the measured rounds, into
// <-pprof>/<t.name>.pprof.
func (b *bench) profile(ctx context.Context, debugAddr, token string, t *target) error {
	if err := os.MkdirAll(b.cfg.pprofDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(b.cfg.pprofDir, strings.ReplaceAll(t.name, " ", "-")+".pprof")
	// wrk runs a second before the profile starts and a second after it
	// ends, so the profile sees a steady load only.
	type wrkDone struct {
		r   benchkit.WrkResult
		err error
	}
	done := make(chan wrkDone, 1)
	go func() {
		r, _, err := b.wrk(ctx, t, token, b.cfg.conns, (profileSeconds+2)*time.Second)
		done <- wrkDone{r, err}
	}()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		<-done
		return ctx.Err()
	}
	perr := benchkit.SaveCPUProfile(ctx, "http://"+debugAddr, profileSeconds, path)
	w := <-done
	if perr != nil {
		return fmt.Errorf("profile %s: %w", t.name, perr)
	}
	if w.err != nil {
		return fmt.Errorf("profile %s: %w", t.name, w.err)
	}
	fmt.Fprintf(b.out, "  profiled %-10s %8.0f req/s  p99 %s (not counted) -> %s\n  read it with: go tool pprof -top -cum -nodecount=60 %s\n",
		t.name, w.r.RPS, benchkit.Millis(w.r.P99), path, path)
	return nil
}
