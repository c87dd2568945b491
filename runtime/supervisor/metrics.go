package supervisor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// stateMetrics are the supervisor's instruments.
type stateMetrics struct {
	restarts *prometheus.CounterVec
	state    *prometheus.GaugeVec
}

// newStateMetrics registers the instruments on reg (none when reg is nil).
func newStateMetrics(reg prometheus.Registerer) *stateMetrics {
	f := promauto.With(reg)
	return &stateMetrics{
		restarts: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ocis",
			Subsystem: "service",
			Name:      "restarts_total",
			Help:      "Restarts of a service by the supervisor after a failure.",
		}, []string{"service"}),
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ocis",
			Subsystem: "service",
			Name:      "state",
			Help:      "1 for the state a service is in, 0 for the others.",
		}, []string{"service", "state"}),
	}
}

func (m *stateMetrics) set(service string, current State) {
	for _, st := range States() {
		v := 0.0
		if st == current {
			v = 1
		}
		m.state.WithLabelValues(service, string(st)).Set(v)
	}
}

func (m *stateMetrics) restarted(service string) {
	m.restarts.WithLabelValues(service).Inc()
}
