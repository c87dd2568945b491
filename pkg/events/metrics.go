package events

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// publisherMetrics are a Publisher's counters. A nil registerer gives
// working collectors registered nowhere.
type publisherMetrics struct {
	published prometheus.Counter
	dropped   *prometheus.CounterVec
	retries   prometheus.Counter
	latency   prometheus.Histogram
}

func newPublisherMetrics(reg prometheus.Registerer, outbox func() float64) publisherMetrics {
	f := promauto.With(reg)
	m := publisherMetrics{
		published: f.NewCounter(prometheus.CounterOpts{
			Name: "ocis_events_published_total",
			Help: "Events acknowledged by the events stream.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ocis_events_dropped_total",
			Help: "Events dropped before reaching the events stream: outbox full (overflow), published after the publisher stopped (closed), not sent within the drain timeout (shutdown).",
		}, []string{"reason"}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "ocis_events_publish_retries_total",
			Help: "Event sends not acknowledged and tried again.",
		}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ocis_events_publish_seconds",
			Help:    "Time from Publish to the stream's acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ocis_events_outbox_events",
		Help: "Events waiting in the outbox to be sent.",
	}, outbox)
	for _, reason := range []string{"overflow", "closed", "shutdown"} {
		m.dropped.WithLabelValues(reason)
	}
	return m
}

// consumerMetrics are a Consumer's, labelled consumer="<name>".
type consumerMetrics struct {
	handled     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     prometheus.Gauge
	ackPending  prometheus.Gauge
	duration    prometheus.Histogram
}

func newConsumerMetrics(reg prometheus.Registerer, name string) consumerMetrics {
	f := promauto.With(reg)
	labels := prometheus.Labels{"consumer": name}
	m := consumerMetrics{
		handled: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "ocis_events_handled_total",
			Help:        "Event deliveries handled, by outcome: ack (done), retry (redelivered later), dead (given up).",
			ConstLabels: labels,
		}, []string{"result"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "ocis_events_dead_letters_total",
			Help:        "Events given up on: a permanent handler error (permanent), the handler failing on the last delivery (max_deliver), or the last delivery never answered (unacked).",
			ConstLabels: labels,
		}, []string{"reason"}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name:        "ocis_events_consumer_pending",
			Help:        "Events for the consumer not yet handled: not delivered yet plus delivered and awaiting an ack or redelivery.",
			ConstLabels: labels,
		}),
		ackPending: f.NewGauge(prometheus.GaugeOpts{
			Name:        "ocis_events_consumer_ack_pending",
			Help:        "Events delivered to the consumer and awaiting an ack or redelivery.",
			ConstLabels: labels,
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "ocis_events_handler_seconds",
			Help:        "Time the handler took per delivery.",
			ConstLabels: labels,
			Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}),
	}
	for _, result := range []string{"ack", "retry", "dead"} {
		m.handled.WithLabelValues(result)
	}
	for _, reason := range []string{"permanent", "max_deliver", "unacked"} {
		m.deadLetters.WithLabelValues(reason)
	}
	return m
}
