package main

import (
	"fmt"
	"math"
	"time"
)

// ratio is a/b as a plain number.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

// mb prints a size in kB as MB.
func mb(kb int64) string { return fmt.Sprintf("%.1fMB", float64(kb)/1024) }
