package main

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestRelaxGC(t *testing.T) {
	for _, tc := range []struct {
		name       string
		before     int
		env        string
		wantDuring int
	}{
		{name: "default", before: 100, wantDuring: startGCPercent},
		{name: "operator's GOGC", before: 150, env: "150", wantDuring: 150},
		{name: "collector off", before: -1, wantDuring: -1},
		{name: "already relaxed further", before: 800, wantDuring: 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer debug.SetGCPercent(debug.SetGCPercent(tc.before))
			restore := relaxGC(func(k string) string {
				if k == "GOGC" {
					return tc.env
				}
				return ""
			})
			if got := gcPercent(); got != tc.wantDuring {
				t.Errorf("during the start GOGC is %d, want %d", got, tc.wantDuring)
			}
			restore()
			restore() // a second call changes nothing
			if got := gcPercent(); got != tc.before {
				t.Errorf("after the start GOGC is %d, want %d", got, tc.before)
			}
		})
	}
}

func TestAwaitStarted(t *testing.T) {
	t.Run("returns once the start has ended", func(t *testing.T) {
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			awaitStarted(context.Background(), started, time.Hour)
			close(done)
		}()
		select {
		case <-done:
			t.Fatal("returned before the start ended")
		case <-time.After(50 * time.Millisecond):
		}
		close(started)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("still waiting after the start ended")
		}
	})
	t.Run("returns at the bound", func(t *testing.T) {
		start := time.Now()
		awaitStarted(context.Background(), nil, 20*time.Millisecond)
		if took := time.Since(start); took < 20*time.Millisecond {
			t.Fatalf("returned after %s, before the bound", took)
		}
	})
	t.Run("returns when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		awaitStarted(ctx, nil, time.Hour)
	})
}
