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

// Verdict is appended to a figure line: " PASS" when the target is met,
// " MISS" when it is not.
func Verdict(met bool) string {
	if met {
		return " PASS"
	}
	return " MISS"
}

// Spread is a figure over its rounds: the smallest, the median and the
// largest value. No figure is reported as its best round.
type Spread struct {
	Min, Median, Max float64
	N                int
}

// SpreadOf is the spread of a non-empty slice.
func SpreadOf(xs []float64) Spread {
	return Spread{Min: slices.Min(xs), Median: Median(xs), Max: slices.Max(xs), N: len(xs)}
}

// Width is (max - min) / median: how far apart the rounds were, as a
// fraction of the figure.
func (s Spread) Width() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / s.Median
}

// Format prints the spread with verb (such as "%.2f") for each value:
// "0.91 (min 0.88, max 0.93, spread 5%, n=3)".
func (s Spread) Format(verb string) string {
	return fmt.Sprintf(verb+" (min "+verb+", max "+verb+", spread %.0f%%, n=%d)", s.Median, s.Min, s.Max, 100*s.Width(), s.N)
}

// Target is the bound a figure must keep: at least or at most Value.
type Target struct {
	Value  float64
	AtMost bool   // the figure must not exceed Value (a cost), else reach it
	Verb   string // the format of Value, "%.2f" when empty
}

// Met reports whether v keeps the target.
func (t Target) Met(v float64) bool {
	if t.AtMost {
		return v <= t.Value
	}
	return v >= t.Value
}

// String is "target >= 0.85".
func (t Target) String() string {
	verb := t.Verb
	if verb == "" {
		verb = "%.2f"
	}
	op := ">="
	if t.AtMost {
		op = "<="
	}
	return fmt.Sprintf("target %s "+verb, op, t.Value)
}

// Judge is the verdict of a spread against t: PASS or MISS by its median,
// with a note when some rounds fell on the other side of the target, so a
// pass that hangs on luck says so.
func (t Target) Judge(s Spread) string {
	verdict := "MISS"
	if t.Met(s.Median) {
		verdict = "PASS"
	}
	if t.Met(s.Min) != t.Met(s.Max) {
		verdict += " (not every round)"
	}
	return t.String() + " " + verdict
}
