package dashboard

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The request instruments a service's registry may hold: the endpoint
// middleware's (pkg/endpoint/metrics.go), which every service with
// endpoints registers, or, for the proxy, which has none, its own
// (services/proxy/metrics.go). A registry is read with the first pair it
// has, so that nothing is counted twice.
var instruments = []struct{ requests, duration string }{
	{"ocis_endpoint_requests_total", "ocis_endpoint_request_duration_seconds"},
	{"ocis_proxy_requests_total", "ocis_proxy_request_duration_seconds"},
}

// rateWindow is how far back a request rate and its p99 look: long
// enough to smooth single requests, short enough to show a change within
// half a minute.
const rateWindow = 30 * time.Second

// sample is one reading of a service's endpoint instruments: every
// endpoint and outcome added up.
type sample struct {
	at      time.Time
	count   float64
	buckets []bucket // cumulative, by upper bound
}

type bucket struct {
	upper float64
	count float64
}

// Traffic is a service's recent requests: per second, and the 99th
// percentile of their latency. Measured is false for a service that
// counts no requests (nats); Known is false until two readings are far
// enough apart; Idle is true when no request came in the window, and
// then there is no P99.
type Traffic struct {
	Measured bool
	Known    bool
	Rate     float64
	P99      time.Duration
	Idle     bool
}

// rates reads each service's own metrics registry in-process and keeps
// the readings of the last rateWindow, so that a rate is a difference of
// two readings, as Prometheus's rate() is.
type rates struct {
	mu   sync.Mutex
	byID map[string]*series
}

// series are the readings of one service's current registry; a new
// registry (a restart) starts a new series, since its counters start
// from zero.
type series struct {
	g       prometheus.Gatherer
	samples []sample
}

func newRates() *rates { return &rates{byID: map[string]*series{}} }

// read takes a reading of g for service name at now and returns its
// traffic over the window. A nil g (the service does not run) forgets
// the service.
func (r *rates) read(name string, g prometheus.Gatherer, now time.Time) Traffic {
	if g == nil {
		r.mu.Lock()
		delete(r.byID, name)
		r.mu.Unlock()
		return Traffic{}
	}
	// A registry shows a labelled counter only once it counted
	// something: until then the reading is zero, so that the first
	// requests are a rate rather than the base of the next one.
	s, found := gather(g)
	if !found {
		s = sample{}
	}
	s.at = now
	r.mu.Lock()
	defer r.mu.Unlock()
	ser := r.byID[name]
	if ser == nil || ser.g != g || (len(ser.samples) > 0 && s.count < ser.samples[len(ser.samples)-1].count) {
		ser = &series{g: g}
		r.byID[name] = ser
	}
	ser.samples = append(ser.samples, s)
	// Keep the newest reading at least rateWindow old as the base, and
	// everything after it.
	for len(ser.samples) > 2 && !ser.samples[1].at.After(now.Add(-rateWindow)) {
		ser.samples = ser.samples[1:]
	}
	base := ser.samples[0]
	elapsed := now.Sub(base.at)
	switch {
	case !found:
		return Traffic{}
	case elapsed < time.Second:
		return Traffic{Measured: true}
	}
	n := s.count - base.count
	t := Traffic{Measured: true, Known: true, Rate: n / elapsed.Seconds()}
	if n <= 0 {
		t.Idle = true
		return t
	}
	p99 := quantile(0.99, diff(s.buckets, base.buckets), n)
	if math.IsNaN(p99) {
		t.Idle = true // requests counted, but no latency recorded
		return t
	}
	t.P99 = time.Duration(p99 * float64(time.Second))
	return t
}

// gather adds up the request instruments of g, over every endpoint and
// outcome; ok is false when g has none: the nats service, or a service
// that has counted no request yet.
func gather(g prometheus.Gatherer) (sample, bool) {
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return sample{}, false
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	for _, in := range instruments {
		requests, ok := byName[in.requests]
		if !ok {
			continue
		}
		var s sample
		for _, m := range requests.GetMetric() {
			s.count += m.GetCounter().GetValue()
		}
		byUpper := map[float64]float64{}
		if duration, ok := byName[in.duration]; ok {
			for _, m := range duration.GetMetric() {
				for _, b := range m.GetHistogram().GetBucket() {
					byUpper[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
		}
		for upper, count := range byUpper {
			s.buckets = append(s.buckets, bucket{upper: upper, count: count})
		}
		slices.SortFunc(s.buckets, func(a, b bucket) int { return cmp.Compare(a.upper, b.upper) })
		return s, true
	}
	return sample{}, false
}

// diff is the cumulative buckets of the requests between two readings.
func diff(now, then []bucket) []bucket {
	old := map[float64]float64{}
	for _, b := range then {
		old[b.upper] = b.count
	}
	out := make([]bucket, len(now))
	for i, b := range now {
		out[i] = bucket{upper: b.upper, count: b.count - old[b.upper]}
	}
	return out
}

// quantile estimates the q-quantile of total observations from
// cumulative buckets, interpolating linearly within the bucket it falls
// in, as Prometheus's histogram_quantile does. Above the highest bound it
// answers that bound.
func quantile(q float64, buckets []bucket, total float64) float64 {
	if len(buckets) == 0 || total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if math.IsInf(b.upper, 1) {
			break
		}
		if b.count >= rank {
			in := b.count - below
			if in <= 0 {
				return b.upper
			}
			return lower + (b.upper-lower)*(rank-below)/in
		}
		lower, below = b.upper, b.count
	}
	return lower
}

// traffic is what the page shows of it.
func (t Traffic) rateText() string {
	switch {
	case !t.Known:
		return "–"
	case t.Rate >= 100:
		return formatFloat(t.Rate, 0) + "/s"
	}
	return formatFloat(t.Rate, 1) + "/s"
}

func (t Traffic) p99Text() string {
	switch {
	case !t.Known:
		return "–"
	case t.Idle:
		return "idle"
	}
	return formatDuration(t.P99)
}
