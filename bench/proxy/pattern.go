package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// patternBlock is the length of the random block a pattern repeats.
const patternBlock = 1 << 20

// pattern is a deterministic reader of size bytes: one random block,
// repeated, with each repetition's index in its first eight bytes, so that
// no two blocks are alike and a large file never has to be in memory.
type pattern struct {
	block []byte
	size  int64
	off   int64
}

func newPattern(size int64) *pattern {
	block := make([]byte, patternBlock)
	// A fixed seed: every run, and every reader of one run, yields the
	// same bytes.
	_, _ = rand.NewChaCha8([32]byte{'o', 'c', 'i', 's'}).Read(block)
	return &pattern{block: block, size: size}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if rest := p.size - p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	n := 0
	for n < len(b) {
		i, j := p.off/patternBlock, int(p.off%patternBlock)
		m := copy(b[n:], p.block[j:])
		if j < 8 {
			var stamp [8]byte
			binary.LittleEndian.PutUint64(stamp[:], uint64(i))
			copy(b[n:n+m], stamp[j:])
		}
		n += m
		p.off += int64(m)
	}
	return n, nil
}

// byteSize is a flag of a number of bytes, with an optional binary (KiB,
// MiB, GiB) or decimal (KB, MB, GB) suffix.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

func (s byteSize) String() string {
	switch n := int64(s); {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10) + "B"
	}
}

func (s *byteSize) Set(v string) error {
	num, unit := v, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, unit = strings.TrimSpace(n), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return fmt.Errorf("%q is not a size such as 1GiB, 128MiB or 1048576", v)
	}
	*s = byteSize(n * unit)
	return nil
}
