package events

import (
	"context"

	"github.com/nats-io/nats.go"
)

// W3C trace context header names (https://www.w3.org/TR/trace-context/).
const (
	TraceparentHeader = "traceparent"
	TracestateHeader  = "tracestate"
)

// Carrier is what a propagator reads trace context from and writes it
// to: the event's message headers. Its method set is OpenTelemetry's
// propagation.TextMapCarrier, so an OpenTelemetry propagator accepts it
// as is.
type Carrier interface {
	Get(key string) string
	Set(key, value string)
	Keys() []string
}

// Propagator moves trace context between a context and an event's
// headers: Inject when publishing (from the request's context), Extract
// when consuming (into the handler's context). An OpenTelemetry
// propagation.TextMapPropagator becomes one with three lines:
//
//	type otelPropagator struct{ p propagation.TextMapPropagator }
//	func (o otelPropagator) Inject(ctx context.Context, c events.Carrier) { o.p.Inject(ctx, c) }
//	func (o otelPropagator) Extract(ctx context.Context, c events.Carrier) context.Context { return o.p.Extract(ctx, c) }
type Propagator interface {
	Inject(ctx context.Context, c Carrier)
	Extract(ctx context.Context, c Carrier) context.Context
}

// TraceContext is a W3C trace context as it travels: the two header
// values, uninterpreted.
type TraceContext struct {
	Traceparent string
	Tracestate  string
}

type traceKey struct{}

// WithTraceContext returns ctx carrying tc, which W3CPropagator puts in
// the headers of every event published with that context. It is how trace
// context travels before OpenTelemetry is wired: an HTTP middleware copies
// the request's traceparent and tracestate here.
func WithTraceContext(ctx context.Context, tc TraceContext) context.Context {
	return context.WithValue(ctx, traceKey{}, tc)
}

// TraceContextFrom returns the trace context ctx carries, if any: in a
// handler, the one the event was published with.
func TraceContextFrom(ctx context.Context) (TraceContext, bool) {
	tc, ok := ctx.Value(traceKey{}).(TraceContext)
	return tc, ok && tc.Traceparent != ""
}

// W3CPropagator, the default, passes the W3C headers through unchanged:
// Inject writes what WithTraceContext put in the context, Extract puts
// the headers back with WithTraceContext. It needs no tracing library.
type W3CPropagator struct{}

// Inject writes ctx's trace context to c.
func (W3CPropagator) Inject(ctx context.Context, c Carrier) {
	tc, ok := TraceContextFrom(ctx)
	if !ok {
		return
	}
	c.Set(TraceparentHeader, tc.Traceparent)
	if tc.Tracestate != "" {
		c.Set(TracestateHeader, tc.Tracestate)
	}
}

// Extract returns ctx carrying c's trace context, or ctx when c has none.
func (W3CPropagator) Extract(ctx context.Context, c Carrier) context.Context {
	tp := c.Get(TraceparentHeader)
	if tp == "" {
		return ctx
	}
	return WithTraceContext(ctx, TraceContext{Traceparent: tp, Tracestate: c.Get(TracestateHeader)})
}

// HeaderCarrier adapts NATS message headers to Carrier.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string { return nats.Header(h).Get(key) }

// Set replaces key's values with value.
func (h HeaderCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
