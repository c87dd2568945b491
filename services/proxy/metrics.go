package proxy

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's request counter and latency histogram, with the
// series of each service and status resolved once and kept: resolving
// labels hashes them and, for the status, formats a number, on every
// request otherwise.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	counters sync.Map // seriesKey → prometheus.Counter
	timers   sync.Map // service → prometheus.Observer
}

type seriesKey struct {
	service string
	code    int
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ocis", Subsystem: "proxy", Name: "requests_total",
			Help: "Requests through the proxy by owning service and status code.",
		}, []string{"service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ocis", Subsystem: "proxy", Name: "request_duration_seconds",
			Help:    "Time to answer through the proxy, by owning service.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"service"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe counts one answer of service with status code that took seconds.
func (m *metrics) observe(service string, code int, seconds float64) {
	key := seriesKey{service, code}
	c, ok := m.counters.Load(key)
	if !ok {
		c, _ = m.counters.LoadOrStore(key, m.requests.WithLabelValues(service, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.timers.Load(service)
	if !ok {
		o, _ = m.timers.LoadOrStore(service, m.duration.WithLabelValues(service))
	}
	o.(prometheus.Observer).Observe(seconds)
}
