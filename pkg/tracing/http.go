package tracing

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps a service's HTTP handler in a server span: the caller's
// traceparent, if any, is its parent (a client's, the proxy's), and the
// span is in the request's context for the endpoint span and the log
// lines. The span is named "<service> <route pattern>" ("storage GET
// /api/v1/files/{path...}"), or "<service> <method>" for a request no route
// took. Off, h is returned as it is.
func (s *Service) Handler(h http.Handler) http.Handler {
	if s == nil {
		return h
	}
	prefix := s.name + " "
	return otelhttp.NewHandler(h, s.name,
		otelhttp.WithTracerProvider(s.tp),
		otelhttp.WithPropagators(propagator),
		// Request metrics are the endpoint middleware's, in Prometheus;
		// otelhttp's would go to the global meter provider.
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return prefix + r.Pattern
			}
			return prefix + r.Method
		}),
	)
}

// Forward is the span of one request the proxy forwards; End it once the
// answer went out. The zero Forward, tracing off, does nothing.
type Forward struct{ span trace.Span }

// Forward starts the span of the proxy forwarding r to service, and puts
// its trace context in r's traceparent, replacing the client's (who is
// its ancestor): every path the request may take passes the header on,
// the network ones and the colocated call, whose handler reads it like a
// remote one's. It returns r with the span in its context. Off, r is
// returned as it is.
func (s *Service) Forward(r *http.Request, service string) (*http.Request, Forward) {
	if s == nil {
		return r, Forward{}
	}
	ctx, span := s.tracer.Start(r.Context(), s.name+".forward",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("ocis.upstream.service", service)))
	propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	return r.WithContext(ctx), Forward{span: span}
}

// End ends the forward's span with the answer's status and the instance
// that gave it (an address, or "in-process").
func (f Forward) End(status int, upstream string) {
	if f.span == nil {
		return
	}
	if f.span.IsRecording() {
		f.span.SetAttributes(
			attribute.Int("http.response.status_code", status),
			attribute.String("ocis.upstream", upstream),
		)
		if status >= 500 {
			f.span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	f.span.End()
}
