// Package tracing is the OpenTelemetry tracing of a process: one exporter
// and one batcher, built once from OCIS_TRACING_* and passed down, and for
// each service a tracer provider whose resource names it (service.name).
// The hooks the services need sit here too: the HTTP listener's server
// span (Handler), the endpoint span (Endpoint), the proxy's forward span
// (Forward), and the trace context of events (EventPropagator, Consume).
//
// No OpenTelemetry global is read or set: every tracer provider and the
// W3C propagator are handed to otelhttp explicitly, and export errors are
// logged through the process's logger rather than otel's global handler.
//
// Off (exporter none) is a nil *Tracing, whose For returns a nil
// *Service; every method of a nil *Service returns its argument unchanged,
// so a service that is not traced pays nothing per request.
package tracing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of every tracer made here.
const scope = "github.com/ocis-runtime/ocis/pkg/tracing"

// propagator reads and writes W3C traceparent and tracestate. It holds no
// state, so one value serves the whole process without being a global
// anyone sets.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Options describe the process to its spans.
type Options struct {
	// Logger gets export failures (one line when export starts failing,
	// one when it works again) and the shutdown.
	Logger log.Logger
	// Node and Version go on every span's resource (ocis.node,
	// service.version).
	Node    string
	Version string
	// Stdout is where the stdout exporter writes without an endpoint;
	// nil means os.Stdout.
	Stdout io.Writer
}

// Tracing is the tracing of one process. A nil *Tracing is tracing off.
type Tracing struct {
	proc    sdktrace.SpanProcessor
	sampler sdktrace.Sampler
	ratio   float64
	opts    Options
	close   func() error // the stdout exporter's file, if it opened one

	mu       sync.Mutex
	services map[string]*Service
}

// New builds the tracing of a process from cfg: nil and no error when the
// exporter is none. The exporter is built at once, but sends nothing
// before the first span ends, so New never waits on the network.
func New(cfg Config, o Options) (*Tracing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	var (
		exp      sdktrace.SpanExporter
		closeOut = func() error { return nil }
		batch    []sdktrace.BatchSpanProcessorOption
	)
	switch cfg.Exporter {
	case ExporterNone:
		return nil, nil
	case ExporterStdout:
		w := o.Stdout
		if w == nil {
			w = os.Stdout
		}
		if cfg.Endpoint != "" {
			f, err := os.OpenFile(cfg.Endpoint, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("tracing-endpoint (OCIS_TRACING_ENDPOINT): open the span file: %w", err)
			}
			w, closeOut = f, f.Close
		}
		e, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			_ = closeOut()
			return nil, fmt.Errorf("stdout span exporter: %w", err)
		}
		exp = e
		// Someone watching a terminal or a file wants a span soon after
		// its request, not up to five seconds later.
		batch = append(batch, sdktrace.WithBatchTimeout(time.Second))
	case ExporterOTLP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		}
		e, err := otlptracehttp.New(context.Background(), opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp span exporter: %w", err)
		}
		exp = e
	}
	t := newTracing(sdktrace.NewBatchSpanProcessor(&loggedExporter{SpanExporter: exp, logger: o.Logger}, batch...), cfg.SampleRatio, o)
	t.close = closeOut
	return t, nil
}

// NewWithProcessor is tracing that hands every span to proc, sampling
// ratio of the traces begun here: for tests, with an in-memory exporter
// (sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter())).
func NewWithProcessor(proc sdktrace.SpanProcessor, ratio float64, o Options) *Tracing {
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	return newTracing(proc, ratio, o)
}

func newTracing(proc sdktrace.SpanProcessor, ratio float64, o Options) *Tracing {
	return &Tracing{
		proc: proc,
		// A request that comes with a traceparent follows its caller's
		// decision, so that a trace is recorded whole or not at all. The
		// traces begun here are sampled by the ratio before any span is
		// started (Service.begin), so that an unsampled request costs no
		// span at all; what reaches the provider without a parent was
		// chosen already.
		sampler:  sdktrace.ParentBased(sdktrace.AlwaysSample()),
		ratio:    ratio,
		opts:     o,
		close:    func() error { return nil },
		services: map[string]*Service{},
	}
}

// For returns the tracing of service name, the same each time (a
// restarted service keeps its provider): nil when t is off.
func (t *Tracing) For(name string) *Service {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.services[name]; ok {
		return s
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", name),
		attribute.String("service.namespace", "ocis"),
		attribute.String("service.version", t.opts.Version),
		attribute.String("service.instance.id", t.opts.Node+"/"+name),
		attribute.String("ocis.node", t.opts.Node),
	)
	// One provider per service, all on the process's one processor: the
	// resource is the provider's, and it is what names the service in
	// every tracing backend. The providers are never shut down; the
	// processor is, once, by Shutdown.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(t.sampler),
		sdktrace.WithSpanProcessor(t.proc),
		sdktrace.WithResource(res),
	)
	s := &Service{name: name, tp: tp, tracer: tp.Tracer(scope), ratio: t.ratio}
	t.services[name] = s
	return s
}

// Shutdown sends the spans still buffered and closes the exporter, within
// ctx. The process calls it once, after its services have stopped.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	err := t.proc.Shutdown(ctx)
	return errors.Join(err, t.close())
}

// Service is the tracing of one service. A nil *Service is tracing off.
type Service struct {
	name   string
	tp     trace.TracerProvider
	tracer trace.Tracer
	ratio  float64
}

// begin decides whether the work under ctx is recorded. Under a caller's
// span context the caller decided. Without one, the ratio decides, and an
// unsampled request gets a span context of its own, not sampled: it
// travels on (the proxy's traceparent, event headers, log lines' trace_id)
// so that the services behind follow the decision instead of sampling
// anew, and no span is started for it anywhere.
func (s *Service) begin(ctx context.Context) (context.Context, bool) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return ctx, sc.IsSampled()
	}
	if s.ratio >= 1 || (s.ratio > 0 && rand.Float64() < s.ratio) {
		return ctx, true
	}
	var tid trace.TraceID
	var sid trace.SpanID
	binary.LittleEndian.PutUint64(tid[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(tid[8:], rand.Uint64()|1)
	binary.LittleEndian.PutUint64(sid[:], rand.Uint64()|1) // never the invalid zero ID
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
	return trace.ContextWithSpanContext(ctx, sc), false
}

// sampled reports whether spans started under ctx are recorded.
func sampled(ctx context.Context) bool { return trace.SpanContextFromContext(ctx).IsSampled() }

// Enabled reports whether s records spans.
func (s *Service) Enabled() bool { return s != nil }

// Name is the service the spans of s belong to.
func (s *Service) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// TracerProvider is the provider of s, for instrumentation that takes
// one; the no-op provider when s is off.
func (s *Service) TracerProvider() trace.TracerProvider {
	if s == nil {
		return noopProvider
	}
	return s.tp
}

// TraceID returns the trace ID ctx carries, and whether it carries one:
// the trace_id of log lines, which a logger writes as 32 hex digits (it is
// a fmt.Stringer), formatted only if the line is written.
func TraceID(ctx context.Context) (trace.TraceID, bool) {
	sc := trace.SpanContextFromContext(ctx)
	return sc.TraceID(), sc.IsValid()
}

// loggedExporter reports export failures through the process's logger,
// once when they start and once when exports work again, instead of to
// OpenTelemetry's global error handler (the standard library's log, once
// per batch). The batcher drops a batch that failed either way.
type loggedExporter struct {
	sdktrace.SpanExporter
	logger log.Logger

	mu      sync.Mutex
	failing bool
}

func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err != nil && !e.failing:
		e.failing = true
		level.Warn(e.logger).Log("msg", "spans not exported; dropping them until the exporter works again", "spans", len(spans), "err", err)
	case err == nil && e.failing:
		e.failing = false
		level.Info(e.logger).Log("msg", "spans exported again")
	}
	return nil
}
