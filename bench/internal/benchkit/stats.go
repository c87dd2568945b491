package benchkit

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Number is what the statistics here work on: counts, durations, sizes and
// rates.
type Number interface {
	~int | ~int64 | ~float64
}

// Median is the median of a non-empty slice; of an even count, the mean of
// the middle two (rounded toward zero for integers).
func Median[T Number](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of a
// non-empty slice: of 100 samples, p99 is the second largest.
func Percentile[T Number](xs []T, p float64) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// Millis prints a duration in milliseconds with two decimals, for
// latencies around a millisecond such as the p99 of small GETs on loopback.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// CoarseMillis prints a duration in milliseconds with one decimal below
// 100ms, where the decimal still means something, and none from there on,
// for times that span milliseconds to seconds such as a process's start.
func CoarseMillis(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f >= 100 {
		return fmt.Sprintf("%.0fms", f)
	}
	return fmt.Sprintf("%.1fms", f)
}

// Verdict is appended to a figure line: empty when the target is met,
// " MISSED" when it is not.
func Verdict(met bool) string {
	if met {
		return ""
	}
	return " MISSED"
}
