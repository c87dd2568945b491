package endpoint

import (
	kitprometheus "github.com/go-kit/kit/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// NewMetrics registers the endpoint instruments of one service on reg,
// through promauto.With, never on the global registerer, so a restarted
// service can register afresh.
func NewMetrics(reg prometheus.Registerer, service string) *Metrics {
	constLabels := prometheus.Labels{"service": service}
	factory := promauto.With(reg)
	requests := factory.NewCounterVec(prometheus.CounterOpts{
		Namespace:   "ocis",
		Subsystem:   "endpoint",
		Name:        "requests_total",
		Help:        "Endpoint calls by endpoint and outcome (ok or an error kind).",
		ConstLabels: constLabels,
	}, []string{"endpoint", "outcome"})
	duration := factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace:   "ocis",
		Subsystem:   "endpoint",
		Name:        "request_duration_seconds",
		Help:        "Endpoint latency by endpoint and outcome.",
		ConstLabels: constLabels,
		Buckets:     prometheus.ExponentialBuckets(0.0005, 4, 9),
	}, []string{"endpoint", "outcome"})
	inFlight := factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace:   "ocis",
		Subsystem:   "endpoint",
		Name:        "requests_in_flight",
		Help:        "Endpoint calls under way.",
		ConstLabels: constLabels,
	}, []string{"endpoint"})
	return &Metrics{
		Requests: kitprometheus.NewCounter(requests),
		Duration: kitprometheus.NewHistogram(duration),
		InFlight: kitprometheus.NewGauge(inFlight),
		vecs:     &vecs{requests: requests, duration: duration, inFlight: inFlight},
	}
}
