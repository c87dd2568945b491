package tracing

import (
	"context"
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
// took. A request that is not sampled skips otelhttp: it gets only the
// span context that carries the decision on (begin). Off, h is returned
// as it is.
func (s *Service) Handler(h http.Handler) http.Handler {
	if s == nil {
		return h
	}
	traced := s.otelhttp(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// A colocated call's context already holds what its header
		// says (the proxy wrote one from the other): nothing to read.
		if tp, ok := r.Header["Traceparent"]; ok && !carries(ctx, tp, r.Header["Tracestate"]) {
			ctx = propagator.Extract(ctx, canonicalCarrier(r.Header))
		}
		ctx, rec := s.begin(ctx)
		if rec {
			traced.ServeHTTP(w, r) // otelhttp extracts the header itself
			return
		}
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	})
}

// otelhttp is h in otelhttp's server span.
func (s *Service) otelhttp(h http.Handler) http.Handler {
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
	// Behind Handler the decision is made; a handler used alone (a
	// test's) makes it here.
	if ctx, rec := s.begin(r.Context()); !rec {
		// Not recorded: no span, only the decision passed on. The
		// header is written by hand, a third of what the propagator
		// allocates.
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		sc := trace.SpanContextFromContext(ctx)
		r.Header["Traceparent"] = []string{traceparent(sc)}
		delete(r.Header, "Tracestate")
		if ts := sc.TraceState().String(); ts != "" {
			r.Header["Tracestate"] = []string{ts}
		}
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

// traceparent is sc as a W3C traceparent header value.
func traceparent(sc trace.SpanContext) string {
	var b [55]byte
	formatTraceparent(&b, sc)
	return string(b[:])
}

// carries reports whether ctx's span context is the one the traceparent
// and tracestate header values tp and ts name, without allocating.
func carries(ctx context.Context, tp, ts []string) bool {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || len(tp) != 1 || len(tp[0]) != 55 || len(ts) > 1 || (len(ts) == 1) != (sc.TraceState().Len() > 0) {
		return false
	}
	if len(ts) == 1 && ts[0] != sc.TraceState().String() {
		return false
	}
	var b [55]byte
	formatTraceparent(&b, sc)
	return string(b[:]) == tp[0]
}

// formatTraceparent writes sc as a W3C traceparent header value into b.
func formatTraceparent(b *[55]byte, sc trace.SpanContext) {
	const hexDigits = "0123456789abcdef"
	copy(b[:], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	i := 3
	for _, c := range tid {
		b[i], b[i+1] = hexDigits[c>>4], hexDigits[c&15]
		i += 2
	}
	b[i] = '-'
	i++
	for _, c := range sid {
		b[i], b[i+1] = hexDigits[c>>4], hexDigits[c&15]
		i += 2
	}
	b[i] = '-'
	f := sc.TraceFlags()
	b[i+1], b[i+2] = hexDigits[f>>4], hexDigits[f&15]
}

// canonicalCarrier reads the W3C headers of a request under their
// canonical names: propagation.HeaderCarrier canonicalises the lower-case
// names the propagator asks for on every call, an allocation each.
type canonicalCarrier http.Header

func (c canonicalCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		key = "Traceparent"
	case "tracestate":
		key = "Tracestate"
	}
	if vs := c[key]; len(vs) > 0 {
		return vs[0]
	}
	return http.Header(c).Get(key)
}

func (c canonicalCarrier) Set(key, value string) { http.Header(c).Set(key, value) }

func (c canonicalCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }
