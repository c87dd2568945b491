package tracing

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Server is the server span of a request that reached a service without
// net/http (the proxy's fasthttp data plane), where Handler cannot wrap
// the handler. The zero Server, tracing off, does nothing.
type Server struct{ span trace.Span }

// Serve starts the server span of a request of method whose W3C headers
// are in hdr, as Handler does: the caller's traceparent, if any, is its
// parent, and it is named "<service> <method>". It returns ctx with the
// span, or with only the sampling decision when the request is not
// recorded. Off, ctx is returned as it is.
func (s *Service) Serve(ctx context.Context, method string, hdr http.Header) (context.Context, Server) {
	if s == nil {
		return ctx, Server{}
	}
	if _, ok := hdr["Traceparent"]; ok {
		ctx = propagator.Extract(ctx, canonicalCarrier(hdr))
	}
	ctx, rec := s.begin(ctx)
	if !rec {
		return ctx, Server{}
	}
	ctx, span := s.tracer.Start(ctx, s.name+" "+method,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", method)))
	return ctx, Server{span: span}
}

// End ends the server span with the answer's status.
func (sv Server) End(status int) {
	if sv.span == nil {
		return
	}
	if sv.span.IsRecording() {
		sv.span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			sv.span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	sv.span.End()
}
