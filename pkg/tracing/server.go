package tracing

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
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
// recorded. Off, ctx is returned as it is. The request's other
// attributes are given to Describe, and only when Recording.
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

// Recording reports whether the span records: only then is a
// ServerRequest worth building.
func (sv Server) Recording() bool { return sv.span != nil && sv.span.IsRecording() }

// ServerRequest is what a server span says of its request, as otelhttp's
// span does on the net/http plane.
type ServerRequest struct {
	Host          string // the Host header, or the host of an absolute-form target
	RemoteAddr    string // "ip:port" of the client's connection
	Path          string // the URL's path, decoded
	UserAgent     string
	XForwardedFor string
	Proto         string // "HTTP/1.1"
}

// Describe puts r on the span, with the attributes and semantic
// convention keys otelhttp gives a net/http request (its
// RequestTraceAttrs, without a TLS listener or a route pattern).
func (sv Server) Describe(r ServerRequest) {
	if !sv.Recording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	host, port := splitHostPort(r.Host)
	attrs = append(attrs, semconv.ServerAddress(host), semconv.URLScheme("http"))
	if port > 0 && port != 80 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	peer, peerPort := splitHostPort(r.RemoteAddr)
	if peer != "" {
		attrs = append(attrs, semconv.NetworkPeerAddress(peer))
		if peerPort > 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(peerPort))
		}
	}
	if r.UserAgent != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(r.UserAgent))
	}
	client, _, _ := strings.Cut(r.XForwardedFor, ",")
	if client == "" {
		client = peer
	}
	if client != "" {
		attrs = append(attrs, semconv.ClientAddress(client))
	}
	if r.Path != "" {
		attrs = append(attrs, semconv.URLPath(r.Path))
	}
	if _, version, ok := strings.Cut(r.Proto, "/"); ok && version != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(version))
	}
	sv.span.SetAttributes(attrs...)
}

// splitHostPort is otelhttp's: the port is -1 when there is none.
func splitHostPort(hostport string) (string, int) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.LastIndexByte(hostport, ']')
		if end < 0 {
			return "", -1
		}
		if !strings.Contains(hostport[end:], ":") {
			return hostport[1:end], -1
		}
	} else if !strings.Contains(hostport, ":") {
		return hostport, -1
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return host, -1
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, -1
	}
	return host, int(port)
}

// End ends the server span with the answer's status and the sizes of the
// request's and the answer's bodies (0: not said, as otelhttp omits them).
func (sv Server) End(status int, read, written int64) {
	if sv.span == nil {
		return
	}
	if sv.span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 3)
		if read > 0 {
			attrs = append(attrs, semconv.HTTPRequestBodySize(int(read)))
		}
		if written > 0 {
			attrs = append(attrs, semconv.HTTPResponseBodySize(int(written)))
		}
		attrs = append(attrs, attribute.Int("http.response.status_code", status))
		sv.span.SetAttributes(attrs...)
		if status >= 500 {
			sv.span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	sv.span.End()
}
