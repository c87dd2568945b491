package main

import (
	"fmt"
	"slices"
	"time"
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
		rps[i], p99[i] = r.rps, r.p99
	}
	return summary{rps: median(rps), p99: median(p99)}
}

// median of a non-empty slice; of an even count, the mean of the middle two.
func median[T ~float64 | ~int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ms prints a duration in milliseconds with two decimals: p99s of small
// GETs on loopback are around a millisecond.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// verdict is appended to a figure: empty when the target is met.
func verdict(met bool) string {
	if met {
		return ""
	}
	return " MISSED"
}
