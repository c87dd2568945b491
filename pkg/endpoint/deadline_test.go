package endpoint

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// newCtx builds a context bounded by d under parent, and its release.
type newCtx func(parent context.Context, d time.Duration) (context.Context, func())

// contexts are the two implementations the deadline tests hold to the same
// answers: the stdlib's, which is the reference, and the lazy one the
// timeout middleware uses.
var contexts = map[string]newCtx{
	"stdlib": func(parent context.Context, d time.Duration) (context.Context, func()) {
		return context.WithTimeout(parent, d)
	},
	"lazy": func(parent context.Context, d time.Duration) (context.Context, func()) {
		c := withDeadline(parent, d)
		return c, c.release
	},
}

// closed reports whether done is closed, without waiting.
func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// pollErr waits for ctx.Err to turn non-nil without ever calling Done:
// a handler that only checks Err between steps.
func pollErr(t *testing.T, ctx context.Context) error {
	t.Helper()
	limit := time.Now().Add(10 * time.Second)
	for time.Now().Before(limit) {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Err still nil 10s after a 5ms deadline")
	return nil
}

// checkEnded checks that ctx answers, everywhere, that it ended with want,
// for the reason wantCause.
func checkEnded(t *testing.T, ctx context.Context, want, wantCause error) {
	t.Helper()
	if err := ctx.Err(); !errors.Is(err, want) {
		t.Errorf("Err() = %v, want %v", err, want)
	}
	if !closed(ctx.Done()) {
		t.Error("Done() not closed once Err is set")
	}
	if err := context.Cause(ctx); !errors.Is(err, wantCause) {
		t.Errorf("Cause() = %v, want %v", err, wantCause)
	}
	// A context derived now, by a library the handler calls, is born
	// ended.
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if !closed(child.Done()) || !errors.Is(child.Err(), want) {
		t.Errorf("child derived afterwards: Err() = %v, want %v, closed", child.Err(), want)
	}
}

func TestDeadlineContextBehavesLikeWithTimeout(t *testing.T) {
	errGone := errors.New("client went away")
	for _, tc := range []struct {
		name string
		// run uses ctx, bounded by 5ms (or an hour when long) under
		// parent, which cancelParent ends with errGone; release is the
		// middleware's return.
		long bool
		// lazyOnly: the stdlib's timer fires a moment after the
		// deadline, so only the lazy context, which reads the clock,
		// can be asked right at it.
		lazyOnly bool
		run      func(t *testing.T, ctx context.Context, cancelParent func(), release func())
	}{
		{
			name: "not ended before its deadline",
			long: true,
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				if err := ctx.Err(); err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				if closed(ctx.Done()) {
					t.Error("Done() closed, want open")
				}
				if err := context.Cause(ctx); err != nil {
					t.Errorf("Cause() = %v, want nil", err)
				}
				if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
					t.Errorf("Deadline() = %v, %t; want an hour from now", d, ok)
				}
			},
		},
		{
			name: "Done closes at the deadline",
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				<-ctx.Done()
				checkEnded(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
			},
		},
		{
			name: "Err turns at the deadline without Done",
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				if err := pollErr(t, ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Err() = %v, want DeadlineExceeded", err)
				}
				checkEnded(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
			},
		},
		{
			name:     "Cause is the first look past the deadline",
			lazyOnly: true,
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				deadline, _ := ctx.Deadline()
				for time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Cause() = %v, want DeadlineExceeded", err)
				}
				checkEnded(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
			},
		},
		{
			name: "a context derived early ends at the deadline",
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				child, cancel := context.WithCancel(ctx)
				defer cancel()
				<-child.Done()
				checkEnded(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
			},
		},
		{
			name: "AfterFunc runs at the deadline",
			run: func(t *testing.T, ctx context.Context, _, _ func()) {
				ran := make(chan struct{})
				context.AfterFunc(ctx, func() { close(ran) })
				<-ran
				checkEnded(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
			},
		},
		{
			name: "the caller going away while Done is watched",
			long: true,
			run: func(t *testing.T, ctx context.Context, cancelParent, _ func()) {
				done := ctx.Done()
				go cancelParent()
				<-done
				checkEnded(t, ctx, context.Canceled, errGone)
			},
		},
		{
			name: "the caller gone before the first look",
			long: true,
			run: func(t *testing.T, ctx context.Context, cancelParent, _ func()) {
				cancelParent()
				// Cause first: it is the first look.
				if err := context.Cause(ctx); !errors.Is(err, errGone) {
					t.Errorf("Cause() = %v, want the parent's cause %v", err, errGone)
				}
				checkEnded(t, ctx, context.Canceled, errGone)
			},
		},
		{
			name: "released while watched",
			long: true,
			run: func(t *testing.T, ctx context.Context, _, release func()) {
				done := ctx.Done()
				release()
				<-done
				checkEnded(t, ctx, context.Canceled, context.Canceled)
			},
		},
		{
			name: "released before the first look",
			long: true,
			run: func(t *testing.T, ctx context.Context, _, release func()) {
				release()
				checkEnded(t, ctx, context.Canceled, context.Canceled)
			},
		},
	} {
		for impl, build := range contexts {
			if tc.lazyOnly && impl != "lazy" {
				continue
			}
			t.Run(tc.name+"/"+impl, func(t *testing.T) {
				parent, cancelParent := context.WithCancelCause(context.Background())
				defer cancelParent(nil)
				d := 5 * time.Millisecond
				if tc.long {
					d = time.Hour
				}
				ctx, release := build(parent, d)
				defer release()
				tc.run(t, ctx, func() { cancelParent(errGone) }, release)
			})
		}
	}
}

func TestDeadlineContextKeepsEarlierParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, _ := parent.Deadline()
	for impl, build := range contexts {
		t.Run(impl, func(t *testing.T) {
			ctx, release := build(parent, time.Hour)
			defer release()
			if got, ok := ctx.Deadline(); !ok || !got.Equal(want) {
				t.Errorf("Deadline() = %v, %t; want the parent's %v", got, ok, want)
			}
		})
	}
}

func TestDeadlineContextValuesComeFromParent(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx := withDeadline(parent, time.Hour)
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value before the first look = %v, want v", got)
	}
	ctx.Done()
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value once watched = %v, want v", got)
	}
	ctx.release()
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value once released = %v, want v", got)
	}
}

// TestDeadlineContextConcurrentLooks races the first looks against the
// release, for the race detector: every watcher ends up with the same
// channel, closed.
func TestDeadlineContextConcurrentLooks(t *testing.T) {
	for range 100 {
		ctx := withDeadline(context.Background(), time.Hour)
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 4)
		for i := range chans {
			wg.Go(func() {
				_ = ctx.Err()
				chans[i] = ctx.Done()
			})
		}
		wg.Go(ctx.release)
		wg.Wait()
		for _, ch := range chans {
			if ch != chans[0] {
				t.Fatal("two watchers got different Done channels")
			}
			<-ch
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err() = %v after release, want Canceled", ctx.Err())
		}
	}
}

// TestTimeoutAllocations checks what the lazy context is for: a call that
// never looks at its context costs one allocation, not a timer context,
// a timer and an entry in its parent's children.
func TestTimeoutAllocations(t *testing.T) {
	e := Timeout(time.Hour)(func(ctx context.Context, _ any) (any, error) { return nil, nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := testing.AllocsPerRun(100, func() { _, _ = e(ctx, nil) })
	if got > 1 {
		t.Errorf("a call that never looks at its context: %v allocations, want at most 1", got)
	}
}
