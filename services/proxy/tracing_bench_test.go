package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/pkg/tracing"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

// BenchmarkTracedGET is one small GET handed to the proxy's in-process
// handler and on to the colocated storage, no network on either side:
// the whole per-request cost of tracing off, at 1% and at 100% (spans
// dropped by the exporter), with the access log on as at the default
// level.
func BenchmarkTracedGET(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio float64 // < 0: off
	}{{"off", -1}, {"1pct", 0.01}, {"100pct", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			var tr *tracing.Tracing
			if bc.ratio >= 0 {
				tr = tracing.NewWithProcessor(sdktrace.NewBatchSpanProcessor(dropSpans{}), bc.ratio, tracing.Options{Node: "n1"})
				defer func() { _ = tr.Shutdown(context.Background()) }()
			}
			h, tok := benchFamily(b, tr)
			put := httptest.NewRequest(http.MethodPut, "/api/v1/files/small.txt", strings.NewReader(strings.Repeat("x", 1024)))
			put.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, put)
			if w.Code != http.StatusCreated {
				b.Fatalf("upload: %d %s", w.Code, w.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/files/small.txt", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("get: %d", w.Code)
				}
			}
		})
	}
}

type dropSpans struct{}

func (dropSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropSpans) Shutdown(context.Context) error                             { return nil }

func benchFamily(b *testing.B, tr *tracing.Tracing) (http.Handler, string) {
	dir := b.TempDir()
	shared := &service.Shared{BaseDataPath: dir, JWTSecret: testSecret, LogLevel: "info", LogFormat: "logfmt", Revocations: auth.NewRevocations()}
	reg := registry.NewMemory()
	sd := storage.Descriptor()
	if err := reg.Declare(sd.Name, sd.Routes, sd.Public); err != nil {
		b.Fatal(err)
	}
	logger := log.NewNopLogger()
	env := service.Env{Logger: logger, Shared: shared, Node: "n1", Registry: reg, Tracing: tr}
	st := servicetest.Start(b, benchConfigured(b, sd, "-data-dir", dir+"/storage"), env)
	if err := reg.Register(registry.Instance{Service: sd.Name, Node: "n1", Addr: st.Addrs.HTTP, Routes: sd.Routes, Local: st.Addrs.Handler}); err != nil {
		b.Fatal(err)
	}
	px := servicetest.Start(b, benchConfigured(b, proxy.Descriptor()), env)
	keys, err := auth.NewKeys(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := keys.Sign(auth.Identity{ID: "alice", Name: "alice"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return px.Addrs.Handler, tok
}

func benchConfigured(b *testing.B, d service.Descriptor, args ...string) service.Config {
	cfg := d.NewConfig()
	fs := flagSet(d.Name)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(append([]string{"-http-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0"}, args...)); err != nil {
		b.Fatal(fmt.Sprint(err))
	}
	return cfg
}
