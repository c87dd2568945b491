package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/logging"
)

// countingLogger counts the lines it is asked to log, passing them on.
type countingLogger struct {
	next  log.Logger
	lines int
}

func (c *countingLogger) Log(keyvals ...any) error {
	c.lines++
	return c.next.Log(keyvals...)
}

// TestLoggingStopsBuildingDroppedLines checks that at info level the
// success line is built once, dropped, and then no more, while failures
// are still logged; at debug level every success line is written.
func TestLoggingStopsBuildingDroppedLines(t *testing.T) {
	fail := func(context.Context, any) (any, error) { return nil, apierr.ErrInternal }
	for _, tc := range []struct {
		level     string
		wantLines int // of three successes and one internal failure
		wantOut   int // lines written
	}{
		{level: "info", wantLines: 2, wantOut: 1},
		{level: "debug", wantLines: 4, wantOut: 4},
	} {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			base, err := logging.New(&buf, tc.level, "logfmt")
			if err != nil {
				t.Fatal(err)
			}
			counted := &countingLogger{next: base}
			okE := endpoint.Logging(counted)(ok)
			for range 3 {
				if _, err := okE(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := endpoint.Logging(counted)(fail)(context.Background(), nil); !errors.Is(err, apierr.ErrInternal) {
				t.Fatalf("err = %v, want internal", err)
			}
			if counted.lines != tc.wantLines {
				t.Errorf("%d lines built, want %d", counted.lines, tc.wantLines)
			}
			if got := strings.Count(buf.String(), "\n"); got != tc.wantOut {
				t.Errorf("%d lines written, want %d:\n%s", got, tc.wantOut, buf.String())
			}
		})
	}
}
