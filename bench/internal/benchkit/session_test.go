package benchkit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keep     bool
		err      error
		wantCode int
	}{
		{name: "figures", wantCode: 0},
		{name: "failure", err: errors.New("no wrk"), wantCode: 1},
		{name: "kept", keep: true, wantCode: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, log bytes.Buffer
			run := Run{Name: "probe", Args: []string{"-short"}, Short: true, Keep: tc.keep, Timeout: time.Minute, Stdout: &out, Stderr: &log}
			var tmp string
			got := run.Measure(func(ctx context.Context, s *Session) error {
				tmp = s.Tmp
				if _, ok := ctx.Deadline(); !ok {
					t.Error("the run's context has no deadline")
				}
				return tc.err
			})
			if got != tc.wantCode {
				t.Errorf("exit status %d, want %d; stderr: %s", got, tc.wantCode, log.String())
			}
			if !strings.HasPrefix(out.String(), "probe bench: ") || !strings.HasSuffix(out.String(), "command: go run ./bench/probe -short\n") {
				t.Errorf("stdout %q: want the machine first and the command line last", out.String())
			}
			if tc.err != nil && !strings.Contains(log.String(), "probe bench: no wrk") {
				t.Errorf("stderr %q does not say the error", log.String())
			}
			_, statErr := os.Stat(tmp)
			if tc.keep {
				if statErr != nil {
					t.Errorf("kept directory: %v", statErr)
				}
				os.RemoveAll(tmp)
			} else if !os.IsNotExist(statErr) {
				t.Errorf("temporary directory %s still there (%v)", tmp, statErr)
			}
		})
	}
}

func TestFlagsFailed(t *testing.T) {
	var log bytes.Buffer
	if got := FlagsFailed("probe", flag.ErrHelp, &log); got != 0 || log.Len() != 0 {
		t.Errorf("-h: status %d, stderr %q; want 0 and nothing", got, log.String())
	}
	if got := FlagsFailed("probe", errors.New("-d 0s: want whole seconds"), &log); got != 2 || !strings.Contains(log.String(), "probe bench: -d 0s") {
		t.Errorf("bad flag: status %d, stderr %q; want 2 and the error", got, log.String())
	}
}
