package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// median of a non-empty slice; of an even count, the mean of the middle two.
func median[T ~int64 | ~int](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of a
// non-empty slice: of 100 samples, p99 is the second largest.
func percentile(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// ratio is a/b as a plain number.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

// ms prints a duration in milliseconds, with one decimal below 100ms where
// the decimal still means something.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f >= 100 {
		return fmt.Sprintf("%.0fms", f)
	}
	return fmt.Sprintf("%.1fms", f)
}

// mb prints a size in kB as MB.
func mb(kb int64) string { return fmt.Sprintf("%.1fMB", float64(kb)/1024) }

// verdict is appended to a figure line: empty when the target is met.
func verdict(met bool) string {
	if met {
		return ""
	}
	return " MISSED"
}
