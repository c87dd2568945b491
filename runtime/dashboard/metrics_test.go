package dashboard

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

func TestQuantile(t *testing.T) {
	buckets := []bucket{{0.001, 50}, {0.01, 90}, {0.1, 100}}
	for _, tc := range []struct {
		q    float64
		want float64
	}{
		{0.5, 0.001},
		{0.9, 0.01},
		{0.95, 0.01 + 0.09*0.5},
		{0.99, 0.01 + 0.09*0.9},
	} {
		if got := quantile(tc.q, buckets, 100); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%v: got %v, want %v", tc.q, got, tc.want)
		}
	}
	// Above the highest bound: the bound.
	if got := quantile(0.99, []bucket{{0.1, 10}}, 20); got != 0.1 {
		t.Errorf("above the last bucket: got %v, want 0.1", got)
	}
	if got := quantile(0.99, nil, 0); !math.IsNaN(got) {
		t.Errorf("no observations: got %v, want NaN", got)
	}
}

// TestRatesFromEndpointMetrics reads the instruments pkg/endpoint
// registers, in-process, as the dashboard does.
func TestRatesFromEndpointMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := endpoint.NewMetrics(reg, "storage")
	r := newRates()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

	// Nothing counted yet: no traffic to show, but the zero reading is
	// the base of the next.
	if got := r.read("storage", reg, t0); got.Measured {
		t.Errorf("before any request: %+v, want not measured", got)
	}
	for range 50 {
		m.Requests.With("endpoint", "get", "outcome", "ok").Add(1)
		m.Duration.With("endpoint", "get", "outcome", "ok").Observe(0.004)
	}
	got := r.read("storage", reg, t0.Add(10*time.Second))
	if !got.Known || got.Rate != 5 || got.Idle {
		t.Fatalf("after 50 requests in 10s: %+v, want 5/s", got)
	}
	if got.P99 < 2*time.Millisecond || got.P99 > 8*time.Millisecond {
		t.Errorf("p99 %s, want within the 2–8 ms bucket", got.P99)
	}
	if got.rateText() != "5/s" {
		t.Errorf("rate text %q", got.rateText())
	}

	// Quiet for a whole window: idle.
	r.read("storage", reg, t0.Add(40*time.Second))
	got = r.read("storage", reg, t0.Add(75*time.Second))
	if !got.Known || got.Rate != 0 || !got.Idle || got.p99Text() != "idle" {
		t.Errorf("quiet window: %+v, want idle", got)
	}

	// A restart brings a new registry, whose counters start at zero.
	reg2 := prometheus.NewRegistry()
	if got := r.read("storage", reg2, t0.Add(80*time.Second)); got.Known {
		t.Errorf("new registry: %+v, want no rate yet", got)
	}
	// A service that is not running is forgotten.
	if got := r.read("storage", nil, t0.Add(81*time.Second)); got.Measured {
		t.Errorf("nil registry: %+v", got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{formatAge(42 * time.Second), "42s"},
		{formatAge(5*time.Minute + 3*time.Second), "5m 3s"},
		{formatAge(3*time.Hour + 12*time.Minute), "3h 12m"},
		{formatAge(50 * time.Hour), "2d 2h"},
		{formatDuration(800 * time.Microsecond), "800 µs"},
		{formatDuration(7700 * time.Microsecond), "7.7 ms"},
		{formatDuration(1500 * time.Millisecond), "1.5 s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
