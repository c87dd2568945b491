package main

import (
	"context"
	"io"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// tracingFlushTimeout bounds the wait for the last spans at exit.
const tracingFlushTimeout = 5 * time.Second

// startTracing builds the tracing of this process from the shared settings
// (OCIS_TRACING_*): nil when the exporter is none. stop sends the spans
// still buffered; the caller defers it, so it runs once every service has
// stopped. The stdout exporter writes to stdout unless the endpoint names
// a file.
func startTracing(shared *service.Shared, logger log.Logger, node string, stdout io.Writer) (t *tracing.Tracing, stop func(), err error) {
	t, err = tracing.New(shared.Tracing, tracing.Options{
		Logger: log.With(logger, "component", "tracing"), Node: node, Version: version, Stdout: stdout,
	})
	if err != nil {
		return nil, nil, err
	}
	if t != nil {
		level.Info(logger).Log("msg", "tracing", "exporter", shared.Tracing.Exporter, "endpoint", shared.Tracing.Endpoint, "sample_ratio", shared.Tracing.SampleRatio)
	}
	return t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			level.Warn(logger).Log("msg", "last spans not exported", "err", err)
		}
	}, nil
}
