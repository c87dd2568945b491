package endpoint

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Chain is the one place middleware is applied. Every endpoint of every
// service goes through it, so no handler logs, counts or recovers on its own.
type Chain struct {
	Logger  log.Logger
	Metrics *Metrics
	// Timeout bounds one request; zero means no bound beyond the caller's.
	Timeout time.Duration
}

// Wrap returns e wrapped, innermost first: recovery sits next to the business
// code so that the timeout, logging and metrics layers all see a panic as an
// ordinary internal error.
func (c Chain) Wrap(name string, e endpoint.Endpoint) endpoint.Endpoint {
	e = Recover(log.With(c.Logger, "endpoint", name))(e)
	if c.Timeout > 0 {
		e = Timeout(c.Timeout)(e)
	}
	e = Logging(log.With(c.Logger, "endpoint", name))(e)
	if c.Metrics != nil {
		e = Instrument(c.Metrics, name)(e)
	}
	return e
}

// Recover turns a panic in the wrapped endpoint into an internal error and
// logs the stack, so one bad request never takes the process down.
func Recover(logger log.Logger) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (response any, err error) {
			defer func() {
				if r := recover(); r != nil {
					level.Error(logger).Log("msg", "endpoint panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					response, err = nil, fmt.Errorf("%w: panic in endpoint", ErrInternal)
				}
			}()
			return next(ctx, request)
		}
	}
}

// Timeout bounds each call with a deadline.
func Timeout(d time.Duration) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			response, err := next(ctx, request)
			if errors.Is(err, context.DeadlineExceeded) && CodeOf(err) == CodeInternal {
				err = fmt.Errorf("%w: request timed out after %s", ErrUnavailable, d)
			}
			return response, err
		}
	}
}

// Logging writes one line per call at debug level, or at warn level when the
// call failed with an internal error, the only kind that needs an operator.
func Logging(logger log.Logger) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (response any, err error) {
			defer func(begin time.Time) {
				code := outcome(err)
				lvl := level.Debug
				if code == string(CodeInternal) {
					lvl = level.Warn
				}
				keyvals := []any{"msg", "endpoint called", "outcome", code, "took", time.Since(begin)}
				if err != nil {
					keyvals = append(keyvals, "err", err)
				}
				lvl(logger).Log(keyvals...)
			}(time.Now())
			return next(ctx, request)
		}
	}
}

// Metrics are the per-endpoint instruments: a request counter and a latency
// histogram, both labelled by endpoint and outcome, and the calls in flight.
type Metrics struct {
	Requests metrics.Counter
	Duration metrics.Histogram
	InFlight metrics.Gauge
}

// Instrument counts and times each call under the endpoint's name.
func Instrument(m *Metrics, name string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		inFlight := m.InFlight.With("endpoint", name)
		return func(ctx context.Context, request any) (response any, err error) {
			inFlight.Add(1)
			defer func(begin time.Time) {
				inFlight.Add(-1)
				lvs := []string{"endpoint", name, "outcome", outcome(err)}
				m.Requests.With(lvs...).Add(1)
				m.Duration.With(lvs...).Observe(time.Since(begin).Seconds())
			}(time.Now())
			return next(ctx, request)
		}
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return string(CodeOf(err))
}
