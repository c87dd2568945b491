package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	perr := fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.debug["storage"], profileSeconds), path)
	if err := <-done; err != nil {
		return fmt.Errorf("profile %s: %w", s.name, err)
	}
	if perr != nil {
		return fmt.Errorf("profile %s: %w", s.name, perr)
	}
	fmt.Fprintf(b.out, "  profiled %s -> %s (go tool pprof -top -cum %s)\n", s.name, path, path)
	return nil
}

// fetchProfile saves the CPU profile url serves to path.
func fetchProfile(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, (profileSeconds+10)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
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
