package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocis-runtime/ocis/pkg/events"
)

// EventPropagator is the events.Propagator of a traced family: Inject
// writes the traceparent of the span in the publisher's context (the
// endpoint that made the event), so the consumer's span joins the request's
// trace; without a span it falls back to events.W3CPropagator, which
// passes on what events.WithTraceContext put in the context. Extract does
// both: the remote span context for OpenTelemetry, and the headers for
// events.TraceContextFrom. It needs no tracer, so a process with tracing
// off can use it too: it writes nothing then.
type EventPropagator struct{}

// Inject implements events.Propagator.
func (EventPropagator) Inject(ctx context.Context, c events.Carrier) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, c)
		return
	}
	events.W3CPropagator{}.Inject(ctx, c)
}

// Extract implements events.Propagator.
func (EventPropagator) Extract(ctx context.Context, c events.Carrier) context.Context {
	return propagator.Extract(events.W3CPropagator{}.Extract(ctx, c), c)
}

// Consume wraps an events handler so that each delivery is a span,
// "<service>.consume", of kind consumer, whose parent is the span that
// published the event when its headers carried one (with
// events.W3CPropagator's extraction as well as EventPropagator's). Off,
// h is returned as it is.
func (s *Service) Consume(h events.Handler) events.Handler {
	if s == nil {
		return h
	}
	spanName := s.name + ".consume"
	return func(ctx context.Context, ev events.Event) (err error) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			if tc, ok := events.TraceContextFrom(ctx); ok {
				ctx = propagator.Extract(ctx, traceContextCarrier(tc))
			}
		}
		ctx, rec := s.begin(ctx)
		if !rec {
			return h(ctx, ev)
		}
		ctx, span := s.tracer.Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindConsumer))
		defer func() {
			if err != nil && span.IsRecording() {
				span.RecordError(err)
				span.SetStatus(codes.Error, "handler failed")
			}
			span.End()
		}()
		if span.IsRecording() {
			attrs := []attribute.KeyValue{
				attribute.String("ocis.event.type", ev.Type),
				attribute.String("ocis.event.id", ev.ID),
			}
			if d, ok := events.DeliveryFrom(ctx); ok {
				attrs = append(attrs, attribute.Int("ocis.event.attempt", d.Attempt))
			}
			span.SetAttributes(attrs...)
		}
		return h(ctx, ev)
	}
}

// traceContextCarrier reads an events.TraceContext as headers.
type traceContextCarrier events.TraceContext

func (c traceContextCarrier) Get(key string) string {
	switch key {
	case events.TraceparentHeader:
		return c.Traceparent
	case events.TracestateHeader:
		return c.Tracestate
	}
	return ""
}

func (c traceContextCarrier) Set(string, string) {}

func (c traceContextCarrier) Keys() []string {
	return []string{events.TraceparentHeader, events.TracestateHeader}
}
