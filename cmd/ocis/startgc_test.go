package main

import (
	"context"
	"runtime/debug"
	"sync"
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

// fakeStart is a supervisor whose readiness the test sets.
type fakeStart struct {
	mu      sync.Mutex
	ready   bool
	changed chan struct{}
}

func newFakeStart() *fakeStart { return &fakeStart{changed: make(chan struct{})} }

func (f *fakeStart) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeStart) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeStart) set(ready bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = ready
	close(f.changed)
	f.changed = make(chan struct{})
}

func TestAwaitStarted(t *testing.T) {
	t.Run("returns once every unit runs", func(t *testing.T) {
		s := newFakeStart()
		done := make(chan struct{})
		go func() {
			awaitStarted(context.Background(), s, time.Hour)
			close(done)
		}()
		// A change that is not the end of the start keeps it waiting.
		s.set(false)
		select {
		case <-done:
			t.Fatal("returned before every unit ran")
		case <-time.After(50 * time.Millisecond):
		}
		s.set(true)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("still waiting after every unit ran")
		}
	})
	t.Run("returns at the bound", func(t *testing.T) {
		start := time.Now()
		awaitStarted(context.Background(), newFakeStart(), 20*time.Millisecond)
		if took := time.Since(start); took < 20*time.Millisecond {
			t.Fatalf("returned after %s, before the bound", took)
		}
	})
	t.Run("returns when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		awaitStarted(ctx, newFakeStart(), time.Hour)
	})
}
