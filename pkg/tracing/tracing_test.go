package tracing_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/go-kit/kit/endpoint"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// clientTraceparent is a sampled W3C traceparent a client might send.
const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientTraceparent = "00-" + clientTraceID + "-00f067aa0ba902b7-01"
)

// memory returns tracing that keeps every finished span in memory.
func memory(t *testing.T, ratio float64) (*tracing.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithProcessor(sdktrace.NewSimpleSpanProcessor(exp), ratio, tracing.Options{Node: "n1", Version: "test"})
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, exp
}

func TestConfigFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    tracing.Config
		wantErr string // a substring of the parse or validation error
	}{
		{name: "defaults", want: tracing.Config{Exporter: "none", SampleRatio: 1}},
		{name: "stdout to a file", args: []string{"-tracing-exporter", "stdout", "-tracing-endpoint", "/tmp/spans.json"},
			want: tracing.Config{Exporter: "stdout", Endpoint: "/tmp/spans.json", SampleRatio: 1}},
		{name: "otlp at 1%", args: []string{"-tracing-exporter", "otlp", "-tracing-endpoint", "http://collector:4318/v1/traces", "-tracing-sample-ratio", "0.01"},
			want: tracing.Config{Exporter: "otlp", Endpoint: "http://collector:4318/v1/traces", SampleRatio: 0.01}},
		{name: "unknown exporter", args: []string{"-tracing-exporter", "jaeger"}, wantErr: "want one of none, stdout, otlp"},
		{name: "ratio above 1", args: []string{"-tracing-sample-ratio", "2"}, wantErr: "from 0 to 1"},
		{name: "ratio not a number", args: []string{"-tracing-sample-ratio", "all"}, wantErr: "from 0 to 1"},
		{name: "otlp endpoint not a URL", args: []string{"-tracing-exporter", "otlp", "-tracing-endpoint", "collector:4318"}, wantErr: "OCIS_TRACING_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tracing.DefaultConfig()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			got.RegisterFlags(fs)
			err := fs.Parse(tc.args)
			if err == nil {
				err = got.Validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Off is nil all the way down, and every hook hands back what it got.
func TestOffChangesNothing(t *testing.T) {
	tr, err := tracing.New(tracing.DefaultConfig(), tracing.Options{})
	if err != nil || tr != nil {
		t.Fatalf("New(none) = %v, %v; want nil, nil", tr, err)
	}
	s := tr.For("storage")
	if s.Enabled() {
		t.Fatal("a service of tracing off is enabled")
	}
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got, ok := s.Handler(h).(http.HandlerFunc); !ok || reflect.ValueOf(got).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Error("Handler wrapped the handler while off")
	}
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Set("Traceparent", clientTraceparent)
	got, fwd := s.Forward(r, "storage")
	fwd.End(200, "in-process")
	if got != r || r.Header.Get("Traceparent") != clientTraceparent {
		t.Error("Forward changed the request while off")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestServerAndEndpointSpans(t *testing.T) {
	tr, exp := memory(t, 1)
	s := tr.For("storage")
	var inner trace.SpanContext
	e := s.Endpoint("get")(func(ctx context.Context, _ any) (any, error) {
		inner = trace.SpanContextFromContext(ctx)
		return nil, apierr.ErrNotFound
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/files/{path...}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = e(r.Context(), nil)
		w.WriteHeader(http.StatusNotFound)
	})
	srv := httptest.NewServer(s.Handler(mux))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/files/a.txt", nil)
	req.Header.Set("Traceparent", clientTraceparent)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byName[sp.Name] = sp
	}
	server, ok := byName["storage GET /api/v1/files/{path...}"]
	if !ok {
		t.Fatalf("no server span named after the route; spans: %v", names(spans))
	}
	ep, ok := byName["storage.get"]
	if !ok {
		t.Fatalf("no endpoint span storage.get; spans: %v", names(spans))
	}
	if got := server.SpanContext.TraceID().String(); got != clientTraceID {
		t.Errorf("server span trace = %s, want the client's %s", got, clientTraceID)
	}
	if ep.Parent.SpanID() != server.SpanContext.SpanID() || ep.SpanContext.SpanID() != inner.SpanID() {
		t.Error("the endpoint span is not the server span's child, or not in the endpoint's context")
	}
	if got := attr(ep, "ocis.outcome"); got != "not_found" {
		t.Errorf("endpoint span ocis.outcome = %q, want not_found", got)
	}
	if ep.Status.Code != 0 { // codes.Unset: a 404 is the caller's, not an error of the service
		t.Errorf("endpoint span status = %v, want unset for not_found", ep.Status)
	}
	if got := resourceAttr(server, "service.name"); got != "storage" {
		t.Errorf("resource service.name = %q, want storage", got)
	}
}

func TestForwardReplacesTheClientsTraceparent(t *testing.T) {
	tr, exp := memory(t, 1)
	var seen string
	s := tr.For("proxy")
	h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr, fwd := s.Forward(r, "storage")
		seen = fr.Header.Get("Traceparent")
		fwd.End(http.StatusOK, "in-process")
	}))
	r := httptest.NewRequest(http.MethodGet, "/api/v1/files/x", nil)
	r.Header.Set("Traceparent", clientTraceparent)
	h.ServeHTTP(httptest.NewRecorder(), r)
	var fwd tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.Name == "proxy.forward" {
			fwd = sp
		}
	}
	want := "00-" + clientTraceID + "-" + fwd.SpanContext.SpanID().String() + "-01"
	if seen != want {
		t.Errorf("forwarded traceparent = %q, want the forward span's %q", seen, want)
	}
	if got := attr(fwd, "ocis.upstream.service"); got != "storage" {
		t.Errorf("forward span ocis.upstream.service = %q, want storage", got)
	}
}

// At a ratio of 0 no trace begun here is recorded, but one whose caller
// sampled it is: a trace is whole or absent.
func TestSamplingFollowsTheCaller(t *testing.T) {
	tr, exp := memory(t, 0)
	h := tr.For("proxy").Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans at ratio 0 without a traceparent, want 0", n)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Traceparent", clientTraceparent)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if n := len(exp.GetSpans()); n != 1 {
		t.Fatalf("%d spans at ratio 0 with a sampled traceparent, want 1", n)
	}
}

// An event published inside a span carries it; the consumer's span is its
// child, with the propagator or with the default one.
func TestEventsCarryTheTrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		extract events.Propagator
	}{
		{name: "EventPropagator", extract: tracing.EventPropagator{}},
		{name: "default W3CPropagator", extract: events.W3CPropagator{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, exp := memory(t, 1)
			ctx, span := tr.For("storage").TracerProvider().Tracer("test").Start(context.Background(), "storage.put")
			hdr := nats.Header{}
			tracing.EventPropagator{}.Inject(ctx, events.HeaderCarrier(hdr))
			span.End()
			if hdr.Get("traceparent") == "" {
				t.Fatal("no traceparent in the event's headers")
			}
			var handled trace.SpanContext
			h := tr.For("activity").Consume(func(ctx context.Context, ev events.Event) error {
				handled = trace.SpanContextFromContext(ctx)
				if _, ok := events.TraceContextFrom(ctx); !ok {
					t.Error("the handler's context lost events.TraceContextFrom")
				}
				return errors.New("retry me")
			})
			cctx := tc.extract.Extract(context.Background(), events.HeaderCarrier(hdr))
			if err := h(cctx, events.Event{ID: "e1", Type: "file.written"}); err == nil {
				t.Fatal("Consume swallowed the handler's error")
			}
			var consume tracetest.SpanStub
			for _, sp := range exp.GetSpans() {
				if sp.Name == "activity.consume" {
					consume = sp
				}
			}
			if consume.Parent.SpanID() != span.SpanContext().SpanID() || consume.SpanContext.TraceID() != span.SpanContext().TraceID() {
				t.Errorf("consume span parent %v, want the publishing span %v", consume.Parent, span.SpanContext())
			}
			if handled.SpanID() != consume.SpanContext.SpanID() {
				t.Error("the handler did not run in the consume span's context")
			}
			if got := attr(consume, "ocis.event.type"); got != "file.written" {
				t.Errorf("ocis.event.type = %q", got)
			}
		})
	}
}

// Without a span, EventPropagator passes on what events.WithTraceContext
// put in the context, as the default does.
func TestEventPropagatorFallsBack(t *testing.T) {
	ctx := events.WithTraceContext(context.Background(), events.TraceContext{Traceparent: clientTraceparent})
	hdr := nats.Header{}
	tracing.EventPropagator{}.Inject(ctx, events.HeaderCarrier(hdr))
	if got := hdr.Get("traceparent"); got != clientTraceparent {
		t.Errorf("traceparent = %q, want %q", got, clientTraceparent)
	}
}

// The stdout exporter with an endpoint appends one JSON object per span to
// that file, flushed by Shutdown.
func TestStdoutToAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spans.json")
	tr, err := tracing.New(tracing.Config{Exporter: "stdout", Endpoint: path, SampleRatio: 1}, tracing.Options{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.For("users").TracerProvider().Tracer("test").Start(context.Background(), "users.login")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines int
	for sc.Scan() {
		lines++
		var got struct {
			Name        string
			SpanContext struct{ TraceID string }
		}
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		if got.Name != "users.login" || got.SpanContext.TraceID != span.SpanContext().TraceID().String() {
			t.Errorf("span %+v, want users.login in trace %s", got, span.SpanContext().TraceID())
		}
	}
	if lines != 1 {
		t.Errorf("%d lines, want 1", lines)
	}
}

// An endpoint middleware stacks like any other.
var _ endpoint.Middleware = (*tracing.Service)(nil).Endpoint("x")

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func resourceAttr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Resource.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// A request not sampled at the proxy makes no span anywhere, yet carries
// the decision on: the forwarded traceparent is the proxy's unsampled
// context, and a service behind that samples everything follows it.
func TestUnsampledCarriesTheDecision(t *testing.T) {
	front, frontSpans := memory(t, 0)
	back, backSpans := memory(t, 1)
	var header string
	var downstream trace.SpanContext
	storage := back.For("storage").Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		downstream = trace.SpanContextFromContext(r.Context())
	}))
	px := front.For("proxy")
	proxyHandler := px.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr, fwd := px.Forward(r, "storage")
		header = fr.Header.Get("Traceparent")
		storage.ServeHTTP(w, fr)
		fwd.End(http.StatusOK, "in-process")
	}))
	proxyHandler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/files/x", nil))

	if n := len(frontSpans.GetSpans()) + len(backSpans.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled request, want 0", n)
	}
	if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`).MatchString(header) {
		t.Fatalf("forwarded traceparent %q, want an unsampled W3C one", header)
	}
	if !downstream.IsValid() || downstream.IsSampled() || !strings.Contains(header, downstream.TraceID().String()) {
		t.Errorf("storage saw %v, want the unsampled context of %q", downstream, header)
	}
}

// The hand-written traceparent of an unsampled context is the W3C one.
func TestTraceparentFormat(t *testing.T) {
	tr, _ := memory(t, 1)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(trace.ContextWithSpanContext(context.Background(), sc))
	got, _ := tr.For("proxy").Forward(r, "storage")
	if h, want := got.Header.Get("Traceparent"), "00-"+clientTraceID+"-00f067aa0ba902b7-00"; h != want {
		t.Errorf("traceparent = %q, want %q", h, want)
	}
}

// BenchmarkHandler is the per-request cost of the hooks one request
// meets in the proxy (server span, forward, an endpoint): off (nil: the
// handler itself), not sampled (99% of the requests at a ratio of 0.01),
// and sampled, into an exporter that drops the spans.
func BenchmarkHandler(b *testing.B) {
	drop := tracing.NewWithProcessor(sdktrace.NewSimpleSpanProcessor(discard{}), 1, tracing.Options{})
	never := tracing.NewWithProcessor(sdktrace.NewSimpleSpanProcessor(discard{}), 0, tracing.Options{})
	for _, bc := range []struct {
		name string
		s    *tracing.Service
	}{
		{"off", nil},
		{"unsampled", never.For("storage")},
		{"sampled", drop.For("storage")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := bc.s.Endpoint("get")(func(context.Context, any) (any, error) { return nil, nil })
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/api/v1/files/x", nil)
			full := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fr, fwd := bc.s.Forward(r, "storage")
				_, _ = e(fr.Context(), nil)
				fwd.End(http.StatusOK, "in-process")
			})
			handler := bc.s.Handler(full)
			b.ReportAllocs()
			for b.Loop() {
				delete(r.Header, "Traceparent")
				handler.ServeHTTP(w, r)
			}
		})
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// A forward with no server span before it (a handler used alone) samples
// by the ratio itself rather than record a trace of one span.
func TestForwardAloneFollowsTheRatio(t *testing.T) {
	tr, exp := memory(t, 0)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/files/x", nil)
	fr, fwd := tr.For("proxy").Forward(r, "storage")
	fwd.End(http.StatusOK, "in-process")
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans at ratio 0, want 0", n)
	}
	if sc := trace.SpanContextFromContext(fr.Context()); !sc.IsValid() || sc.IsSampled() || !strings.Contains(fr.Header.Get("Traceparent"), sc.TraceID().String()) {
		t.Errorf("forwarded %q with context %v, want an unsampled decision carried on", fr.Header.Get("Traceparent"), sc)
	}
}
