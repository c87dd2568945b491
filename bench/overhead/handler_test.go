package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// BenchmarkHandler serves one echo request per iteration straight into a
// handler, without TCP or a load generator, so that ns/op and allocs/op show
// the framework's own cost per request. Besides the two sides of the
// loopback measurement it builds the framework with one layer of the chain
// left out at a time, so the difference to "framework" is what that layer
// costs:
//
//	go test ./bench/overhead -run '^$' -bench Handler -benchmem
func BenchmarkHandler(b *testing.B) {
	logger := benchLogger()
	newMetrics := func() *endpoint.Metrics { return endpoint.NewMetrics(prometheus.NewRegistry(), "bench") }
	// without composes the production layers, innermost first as
	// endpoint.Chain.Wrap does, leaving out the one named.
	without := func(skip string) wrapFunc {
		return func(name string, e kitendpoint.Endpoint) kitendpoint.Endpoint {
			layers := []struct {
				name string
				mw   kitendpoint.Middleware
			}{
				{"recover", endpoint.Recover(logger)},
				{"timeout", endpoint.Timeout(productionChain(logger).Timeout)},
				{"logging", endpoint.Logging(logger)},
				{"metrics", endpoint.Instrument(newMetrics(), name)},
			}
			for _, l := range layers {
				if l.name != skip {
					e = l.mw(e)
				}
			}
			return e
		}
	}
	bare := func(_ string, e kitendpoint.Endpoint) kitendpoint.Endpoint { return e }

	const body = `{"message":"hello from worker 3","seq":12345}`
	for _, tc := range []struct {
		name string
		h    http.Handler
		body string
	}{
		{"framework", frameworkHandler(logger, productionChain(logger).Wrap), body},
		{"framework/no-metrics", frameworkHandler(logger, without("metrics")), body},
		{"framework/no-logging", frameworkHandler(logger, without("logging")), body},
		{"framework/no-timeout", frameworkHandler(logger, without("timeout")), body},
		{"framework/no-recover", frameworkHandler(logger, without("recover")), body},
		{"framework/no-chain", frameworkHandler(logger, bare), body},
		// json.Encoder and curl -d @file bodies end in a newline.
		{"framework/trailing-newline", frameworkHandler(logger, productionChain(logger).Wrap), body + "\n"},
		{"plain", plainHandler(), body},
		{"plain/trailing-newline", plainHandler(), body + "\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, echoPath, strings.NewReader(tc.body))
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestHandlersAgree checks that both sides answer the same echo, so the
// measurement compares like with like.
func TestHandlersAgree(t *testing.T) {
	const body = `{"message":"hi","seq":7}`
	want := `{"message":"hi","seq":7,"length":2}` + "\n"
	logger := benchLogger()
	for name, h := range map[string]http.Handler{
		"framework": frameworkHandler(logger, productionChain(logger).Wrap),
		"plain":     plainHandler(),
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, echoPath, strings.NewReader(body)))
			if got := w.Body.String(); w.Code != http.StatusOK || got != want {
				t.Errorf("got %d %q, want 200 %q", w.Code, got, want)
			}
		})
	}
}
