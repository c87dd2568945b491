package benchkit

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []time.Duration
		want time.Duration
	}{
		{"one", []time.Duration{7}, 7},
		{"odd count, unsorted", []time.Duration{9, 1, 5}, 5},
		{"even count is the mean of the middle two", []time.Duration{4, 1, 2, 3}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xs := append([]time.Duration(nil), tc.xs...)
			if got := Median(tc.xs); got != tc.want {
				t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
			}
			for i := range xs {
				if xs[i] != tc.xs[i] {
					t.Fatalf("Median sorted its argument: %v, was %v", tc.xs, xs)
				}
			}
		})
	}
	if got, want := Median([]float64{1, 2}), 1.5; got != want {
		t.Errorf("Median of floats = %v, want %v", got, want)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name string
		xs   []int
		p    float64
		want int
	}{
		{"p99 of 100 is the second largest", hundred, 99, 99},
		{"p100 is the largest", hundred, 100, 100},
		{"p50 of 100 is the 50th", hundred, 50, 50},
		{"a tiny p is the smallest", []int{3, 1, 2}, 0.1, 1},
		{"p99 of 3 is the largest", []int{3, 1, 2}, 99, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.xs, tc.p); got != tc.want {
				t.Errorf("Percentile(p%v) = %d, want %d", tc.p, got, tc.want)
			}
		})
	}
}

func TestMillis(t *testing.T) {
	tests := []struct {
		d          time.Duration
		want       string
		wantCoarse string
	}{
		{1234 * time.Microsecond, "1.23ms", "1.2ms"},
		{99940 * time.Microsecond, "99.94ms", "99.9ms"},
		{100 * time.Millisecond, "100.00ms", "100ms"},
		{2500400 * time.Microsecond, "2500.40ms", "2500ms"},
	}
	for _, tc := range tests {
		t.Run(tc.d.String(), func(t *testing.T) {
			if got := Millis(tc.d); got != tc.want {
				t.Errorf("Millis = %q, want %q", got, tc.want)
			}
			if got := CoarseMillis(tc.d); got != tc.wantCoarse {
				t.Errorf("CoarseMillis = %q, want %q", got, tc.wantCoarse)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	if got := Verdict(true); got != " PASS" {
		t.Errorf("Verdict(true) = %q, want %q", got, " PASS")
	}
	if got := Verdict(false); got != " MISS" {
		t.Errorf("Verdict(false) = %q, want %q", got, " MISS")
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		xs     []float64
		want   string
	}{
		{"every round above", Target{Value: 0.85}, []float64{0.9, 0.88, 0.95}, "target >= 0.85 PASS"},
		{"median above, one round below", Target{Value: 0.85}, []float64{0.9, 0.8, 0.95}, "target >= 0.85 PASS (not every round)"},
		{"every round below", Target{Value: 0.85}, []float64{0.7, 0.8, 0.75}, "target >= 0.85 MISS"},
		{"a cost under its bound", Target{Value: 1.2, AtMost: true, Verb: "%.1f"}, []float64{1.1, 1.15, 1.0}, "target <= 1.2 PASS"},
		{"a cost over its bound", Target{Value: 1.2, AtMost: true}, []float64{1.3, 1.25, 1.1}, "target <= 1.20 MISS (not every round)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.target.Judge(SpreadOf(tc.xs)); got != tc.want {
				t.Errorf("Judge = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpreadFormat(t *testing.T) {
	got := SpreadOf([]float64{0.9, 0.8, 1.0}).Format("%.2f")
	if want := "0.90 (min 0.80, max 1.00, spread 22%, n=3)"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}
