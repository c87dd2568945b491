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

// profile writes a CPU profile of s's process, taken through storage's
// debug address during an extra wrk run outside the measured rounds, to
// <-pprof>/<s.name>.pprof: comparing off's with publish's shows where the
// publisher's cost goes.
func (b *bench) profile(ctx context.Context, s *server, script string) error {
	if err := os.MkdirAll(b.cfg.pprofDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(b.cfg.pprofDir, strings.ReplaceAll(s.name, "+", "-")+".pprof")
	done := make(chan error, 1)
	go func() {
		// A second of load before the profile and after it, so that
		// it sees a steady load only.
		_, err := b.load(ctx, s, script, (profileSeconds+2)*time.Second)
		done <- err
	}()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		<-done
		return ctx.Err()
	}
	perr := benchkit.SaveCPUProfile(ctx, s.debug["storage"], profileSeconds, path)
	if err := <-done; err != nil {
		return fmt.Errorf("profile %s: %w", s.name, err)
	}
	if perr != nil {
		return fmt.Errorf("profile %s: %w", s.name, perr)
	}
	fmt.Fprintf(b.out, "  profiled %s -> %s (go tool pprof -top -cum %s)\n", s.name, path, path)
	return nil
}
