// Package logging creates the one logger of a process; everything else gets
// it passed down and adds its own keys with log.With.
package logging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// ErrDropped is what a logger made here returns from Log for a line below
// its level. A caller that logs the same line at the same level again and
// again (an endpoint's call line) may stop building it once it was
// dropped: the level of a logger never changes.
var ErrDropped = errors.New("logging: line below the level")

// Levels returns the levels a logger can be built with, lowest first. It is
// a function, not a variable, so no caller can change the list for
// everyone.
func Levels() []string { return []string{"debug", "info", "warn", "error"} }

// Formats returns the formats a logger can be built with.
func Formats() []string { return []string{"logfmt", "json"} }

// New returns a logger writing format ("logfmt" or "json") to w, dropping
// lines below lvl, with a UTC timestamp on every line.
func New(w io.Writer, lvl, format string) (log.Logger, error) {
	logger, _, err := Open(w, Options{Level: lvl, Format: format})
	return logger, err
}

// Options are how the process's logger is made.
type Options struct {
	Level  string // debug, info, warn or error
	Format string // logfmt or json
	// File, when set, receives every line as well as the process's
	// stderr; it is appended to and created with mode 0600.
	File string
	// Ring, when set, keeps each service's recent lines: every line that
	// carries service=<name> goes there too.
	Ring *Ring
}

// Open returns the process's logger: lines in o.Format at o.Level and
// above, with a UTC timestamp, written to w, to o.File and to o.Ring. The
// returned close releases the file.
func Open(w io.Writer, o Options) (logger log.Logger, close func() error, err error) {
	opt, err := levelOption(o.Level)
	if err != nil {
		return nil, nil, err
	}
	if o.Format != "logfmt" && o.Format != "json" {
		return nil, nil, fmt.Errorf("unknown log format %q", o.Format)
	}
	close = func() error { return nil }
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file (--log-file, OCIS_LOG_FILE): %w", err)
		}
		// stderr first: a full disk must not cost the lines on screen.
		w, close = io.MultiWriter(w, f), f.Close
	}
	logger = &lineLogger{format: o.Format, out: log.NewSyncWriter(w), ring: o.Ring}
	// The timestamp is bound below the level filter: above it, every line
	// the filter then drops (each endpoint call's line at debug) would
	// still read the clock and copy its values. It comes first on every
	// line either way, as the innermost context puts its own values first.
	logger = log.With(logger, "ts", log.DefaultTimestampUTC)
	return level.NewFilter(logger, opt, level.ErrNotAllowed(ErrDropped)), close, nil
}

// lineLogger formats each line once and hands it to the output and, when
// it names its service, to that service's ring.
type lineLogger struct {
	format string
	out    io.Writer
	ring   *Ring
}

func (l *lineLogger) Log(keyvals ...any) error {
	var b bytes.Buffer
	var err error
	if l.format == "json" {
		err = log.NewJSONLogger(&b).Log(keyvals...)
	} else {
		err = log.NewLogfmtLogger(&b).Log(keyvals...)
	}
	if err != nil {
		return err
	}
	if l.ring != nil {
		if svc := serviceOf(keyvals); svc != "" {
			l.ring.add(svc, strings.TrimSuffix(b.String(), "\n"))
		}
	}
	_, err = l.out.Write(b.Bytes())
	return err
}

// serviceOf returns the value of the line's service key, the last one
// when there are several (the innermost log.With wins).
func serviceOf(keyvals []any) string {
	var svc string
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, ok := keyvals[i].(string); ok && k == "service" {
			svc = fmt.Sprint(keyvals[i+1])
		}
	}
	return svc
}

func levelOption(lvl string) (level.Option, error) {
	switch lvl {
	case "debug":
		return level.AllowDebug(), nil
	case "info":
		return level.AllowInfo(), nil
	case "warn":
		return level.AllowWarn(), nil
	case "error":
		return level.AllowError(), nil
	}
	return nil, fmt.Errorf("unknown log level %q", lvl)
}
