package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// TestTimestampFirstAndDroppedLinesCheap checks that every line begins
// with its timestamp, and that a line below the level costs no more than
// the call itself: no clock read, no copy of its values.
func TestTimestampFirstAndDroppedLinesCheap(t *testing.T) {
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := New(&buf, "info", format)
			if err != nil {
				t.Fatal(err)
			}
			logger = log.With(logger, "service", "users")
			level.Info(logger).Log("msg", "hello")
			line := buf.String()
			want := "ts="
			if format == "json" {
				want = `{"level":"info","msg":"hello","service":"users","ts":` // json sorts keys
			}
			if !strings.HasPrefix(line, want) || !strings.Contains(line, "hello") {
				t.Errorf("line %q, want it to begin with %q", line, want)
			}

			buf.Reset()
			debug := level.Debug(logger)
			if err := debug.Log("msg", "dropped"); !errors.Is(err, ErrDropped) {
				t.Errorf("Log of a line below the level = %v, want %v", err, ErrDropped)
			}
			allocs := testing.AllocsPerRun(100, func() {
				debug.Log("msg", "endpoint called", "outcome", "ok")
			})
			if buf.Len() != 0 {
				t.Errorf("a debug line at level info was written: %q", buf.String())
			}
			// The call's own values escape to the heap (one slice) and
			// the filter's context joins them to its own (another).
			if allocs > 2 {
				t.Errorf("a dropped line cost %.0f allocations, want at most 2", allocs)
			}
		})
	}
}
