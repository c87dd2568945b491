// Package logging creates the one logger of a process; everything else gets
// it passed down and adds its own keys with log.With.
package logging

import (
	"fmt"
	"io"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Levels returns the levels a logger can be built with, lowest first. It is
// a function, not a variable, so no caller can change the list for
// everyone.
func Levels() []string { return []string{"debug", "info", "warn", "error"} }

// Formats returns the formats a logger can be built with.
func Formats() []string { return []string{"logfmt", "json"} }

// New returns a logger writing format ("logfmt" or "json") to w, dropping
// lines below lvl, with a UTC timestamp on every line.
func New(w io.Writer, lvl, format string) (log.Logger, error) {
	w = log.NewSyncWriter(w)
	var logger log.Logger
	switch format {
	case "logfmt":
		logger = log.NewLogfmtLogger(w)
	case "json":
		logger = log.NewJSONLogger(w)
	default:
		return nil, fmt.Errorf("unknown log format %q", format)
	}
	opt, err := levelOption(lvl)
	if err != nil {
		return nil, err
	}
	logger = level.NewFilter(logger, opt)
	return log.With(logger, "ts", log.DefaultTimestampUTC), nil
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
