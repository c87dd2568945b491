package main

import (
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// summary is the median of a target's rounds.
type summary struct {
	rps float64
	p99 time.Duration
}

func summarise(t *target) summary {
	rps := make([]float64, len(t.results))
	p99 := make([]time.Duration, len(t.results))
	for i, r := range t.results {
		rps[i], p99[i] = r.RPS, r.P99
	}
	return summary{rps: benchkit.Median(rps), p99: benchkit.Median(p99)}
}
