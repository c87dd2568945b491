package transport_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestDebugHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	starts := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_starts_total", Help: "Starts."})
	reg.MustRegister(starts)
	starts.Inc()
	var ready atomic.Bool

	type step struct {
		name            string
		pprof           bool
		setReady        bool
		method, path    string
		wantStatus      int
		wantContentType string
		wantInBody      []string
	}
	for _, tc := range []step{
		{name: "alive", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK, wantContentType: "application/json", wantInBody: []string{`"status":"ok"`}},
		{name: "not ready yet", method: http.MethodGet, path: "/readyz", wantStatus: http.StatusServiceUnavailable, wantInBody: []string{`"status":"not ready"`}},
		{name: "ready", setReady: true, method: http.MethodGet, path: "/readyz", wantStatus: http.StatusOK, wantInBody: []string{`"status":"ready"`}},
		{name: "alive while ready", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK},
		{
			name: "metrics", method: http.MethodGet, path: "/metrics", wantStatus: http.StatusOK, wantContentType: "text/plain",
			wantInBody: []string{"# HELP test_starts_total Starts.", "# TYPE test_starts_total counter", "test_starts_total 1"},
		},
		{name: "no pprof unless asked", method: http.MethodGet, path: "/debug/pprof/", wantStatus: http.StatusNotFound},
		{name: "pprof when asked", pprof: true, method: http.MethodGet, path: "/debug/pprof/", wantStatus: http.StatusOK, wantInBody: []string{"goroutine"}},
		{name: "health is read-only", method: http.MethodPost, path: "/healthz", wantStatus: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setReady {
				ready.Store(true)
			}
			h := transport.DebugHandler(reg, ready.Load, tc.pprof)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
			if w.Code != tc.wantStatus {
				t.Fatalf("%s %s: status = %d, want %d; body %s", tc.method, tc.path, w.Code, tc.wantStatus, w.Body)
			}
			if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, tc.wantContentType) {
				t.Errorf("Content-Type = %q, want %q…", got, tc.wantContentType)
			}
			for _, want := range tc.wantInBody {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("body lacks %q:\n%s", want, w.Body)
				}
			}
		})
	}
}
