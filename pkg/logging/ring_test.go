package logging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

func TestRingBounds(t *testing.T) {
	tests := []struct {
		name               string
		maxLines, maxBytes int
		add                []string
		want               []string
	}{
		{"under the bounds", 3, 100, []string{"a", "b"}, []string{"a", "b"}},
		{"by lines", 3, 100, []string{"a", "b", "c", "d", "e"}, []string{"c", "d", "e"}},
		{"by bytes", 10, 6, []string{"aa", "bb", "cc", "dd"}, []string{"bb", "cc", "dd"}},
		{"a line over the byte bound is kept alone", 10, 4, []string{"a", "b", "toolong"}, []string{"toolong"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(tt.maxLines, tt.maxBytes, "users")
			for _, l := range tt.add {
				r.add("users", l)
			}
			got, next, ok := r.Tail("users", 100)
			if !ok || !slices.Equal(got, tt.want) || next != uint64(len(tt.add)) {
				t.Errorf("Tail = %q, %d, %v; want %q, %d", got, next, ok, tt.want, len(tt.add))
			}
		})
	}
}

func TestRingTailAndSince(t *testing.T) {
	r := NewRing(4, 1000, "users", "storage")
	for i := range 6 {
		r.add("users", fmt.Sprint(i))
	}
	r.add("nosuch", "dropped")
	if got, _, _ := r.Tail("users", 2); !slices.Equal(got, []string{"4", "5"}) {
		t.Errorf("Tail 2 = %q", got)
	}
	if got, _, _ := r.Tail("users", 0); len(got) != 0 {
		t.Errorf("Tail 0 = %q", got)
	}
	if got, next, ok := r.Tail("storage", 5); !ok || len(got) != 0 || next != 0 {
		t.Errorf("Tail of a quiet service = %q, %d, %v", got, next, ok)
	}
	if _, _, ok := r.Tail("nosuch", 5); ok {
		t.Error("Tail of an unknown service is ok")
	}
	_, pos, _ := r.Tail("users", 1)
	lines, next, changed := r.Since("users", pos)
	if len(lines) != 0 || next != pos {
		t.Errorf("Since at the end = %q, %d", lines, next)
	}
	r.add("users", "6")
	select {
	case <-changed:
	default:
		t.Fatal("changed not closed by a new line")
	}
	if lines, next, _ = r.Since("users", next); !slices.Equal(lines, []string{"6"}) || next != 7 {
		t.Errorf("Since = %q, %d; want [6], 7", lines, next)
	}
	// A follower far behind gets what is still kept.
	if lines, _, _ = r.Since("users", 1); !slices.Equal(lines, []string{"3", "4", "5", "6"}) {
		t.Errorf("Since an old position = %q", lines)
	}
}

func TestOpenFeedsRingAndFile(t *testing.T) {
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			ring := NewRing(10, 1000, "users", "runtime")
			file := filepath.Join(t.TempDir(), "ocis.log")
			var stderr bytes.Buffer
			logger, closeFile, err := Open(&stderr, Options{Level: "info", Format: format, File: file, Ring: ring})
			if err != nil {
				t.Fatal(err)
			}
			users := log.With(logger, "service", "users")
			level.Info(users).Log("msg", "hello")
			level.Debug(users).Log("msg", "below the level")
			level.Info(log.With(logger, "service", "runtime")).Log("msg", "runtime line")
			level.Info(logger).Log("msg", "no service")
			if err := closeFile(); err != nil {
				t.Fatal(err)
			}
			got, _, _ := ring.Tail("users", 10)
			if len(got) != 1 || !strings.Contains(got[0], "hello") || strings.HasSuffix(got[0], "\n") {
				t.Errorf("users ring = %q, want the one info line", got)
			}
			onFile, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(onFile) != stderr.String() || strings.Count(stderr.String(), "\n") != 3 {
				t.Errorf("file %q and stderr %q differ or lack lines", onFile, stderr.String())
			}
		})
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Level: "loud", Format: "logfmt"},
		{Level: "info", Format: "xml"},
		{Level: "info", Format: "logfmt", File: filepath.Join(t.TempDir(), "no", "such", "dir", "x.log")},
	} {
		if _, _, err := Open(&bytes.Buffer{}, o); err == nil {
			t.Errorf("Open(%+v) = nil error", o)
		}
	}
}
