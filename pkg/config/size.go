package config

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SizeVar defines a size flag in bytes that takes units: "1048576",
// "10MB" (decimal, 10·1000²) or "1GiB" (binary, 1024³); the unit's case
// does not matter and a space may stand before it. Negative sizes are
// refused.
func SizeVar(fs *flag.FlagSet, p *int64, name string, value int64, usage string) {
	*p = value
	fs.Var((*sizeValue)(p), name, usage)
}

type sizeValue int64

func (s *sizeValue) String() string {
	if s == nil {
		return "0"
	}
	return FormatSize(int64(*s))
}

func (s *sizeValue) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

// sizeUnits are the multipliers ParseSize knows, by lower-case unit.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1000, "kb": 1000, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1000 * 1000, "mb": 1000 * 1000, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1000 * 1000 * 1000, "gb": 1000 * 1000 * 1000, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1000 * 1000 * 1000 * 1000, "tb": 1000 * 1000 * 1000 * 1000, "ti": 1 << 40, "tib": 1 << 40,
}

// errSize is the answer to any size ParseSize cannot read.
var errSize = fmt.Errorf("want a size of at least 0 in bytes, or with a unit such as 10MB or 1GiB")

// ParseSize reads a size in bytes with an optional unit: B, KB, MB, GB,
// TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024). A fraction
// is allowed with a unit ("1.5GB").
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(v)
	}
	num, unit := v[:i], strings.ToLower(strings.TrimSpace(v[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, errSize
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || (n > 0 && mult > math.MaxInt64/n) {
			return 0, errSize
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) >= math.MaxInt64 {
		return 0, errSize
	}
	return int64(f * float64(mult)), nil
}

// FormatSize writes n in the largest binary or decimal unit that holds it
// exactly ("1GiB", "10MB"), or in bytes.
func FormatSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		mult int64
	}{
		{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
		{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
	} {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
