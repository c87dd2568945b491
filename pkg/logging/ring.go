package logging

import (
	"slices"
	"sync"
)

// Bounds of what a Ring keeps of each service: the most recent lines, at
// most this many and this many bytes, whichever is reached first.
const (
	DefaultRingLines = 1000
	DefaultRingBytes = 256 << 10
)

// Ring keeps the most recent log lines of each service, fed by the
// process's logger (Options.Ring) with every line that carries
// service=<name>, so that `ocis logs` reads what a service said without
// anyone keeping log files. Memory is bounded per service, and a service
// the ring was not told of keeps nothing.
type Ring struct {
	maxLines, maxBytes int
	tails              map[string]*tail
	names              []string
}

// tail is one service's lines: a circular buffer of at most maxLines,
// holding bytes in all, and seq, the number of lines ever added, so that
// a follower knows where it stopped.
type tail struct {
	mu      sync.Mutex
	lines   []string
	start   int // index of the oldest line kept
	count   int
	bytes   int
	seq     uint64
	changed chan struct{} // closed and replaced on every line
}

// NewRing returns a ring keeping up to maxLines lines and maxBytes bytes
// for each of services.
func NewRing(maxLines, maxBytes int, services ...string) *Ring {
	r := &Ring{maxLines: max(1, maxLines), maxBytes: max(1, maxBytes), tails: map[string]*tail{}}
	for _, s := range services {
		if _, dup := r.tails[s]; dup {
			continue
		}
		r.tails[s] = &tail{lines: make([]string, r.maxLines), changed: make(chan struct{})}
		r.names = append(r.names, s)
	}
	return r
}

// Services lists the services the ring keeps lines of, in the order given.
func (r *Ring) Services() []string { return slices.Clone(r.names) }

// add keeps line as service's most recent, dropping the oldest ones past
// the bounds; a line longer than the byte bound is kept alone.
func (r *Ring) add(service, line string) {
	t, ok := r.tails[service]
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.count > 0 && (t.count == r.maxLines || t.bytes+len(line) > r.maxBytes) {
		t.bytes -= len(t.lines[t.start])
		t.lines[t.start] = ""
		t.start = (t.start + 1) % r.maxLines
		t.count--
	}
	t.lines[(t.start+t.count)%r.maxLines] = line
	t.count++
	t.bytes += len(line)
	t.seq++
	close(t.changed)
	t.changed = make(chan struct{})
}

// Tail returns service's last n lines, oldest first, and the position
// after them for Since; ok is false for a service the ring does not keep.
func (r *Ring) Tail(service string, n int) (lines []string, next uint64, ok bool) {
	t, ok := r.tails[service]
	if !ok {
		return nil, 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(max(n, 0), t.count)
	return t.linesLocked(r.maxLines, t.count-n), t.seq, true
}

// Since returns service's lines after position seq that are still kept,
// the position after them, and a channel closed when the next line comes.
// A follower that fell behind by more than the ring keeps misses the
// lines in between.
func (r *Ring) Since(service string, seq uint64) (lines []string, next uint64, changed <-chan struct{}) {
	t, ok := r.tails[service]
	if !ok {
		return nil, seq, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	first := t.seq - uint64(t.count)
	skip := 0
	if seq > first {
		skip = int(min(seq-first, uint64(t.count)))
	}
	return t.linesLocked(r.maxLines, skip), t.seq, t.changed
}

// linesLocked copies the kept lines after the first skip of them.
func (t *tail) linesLocked(size, skip int) []string {
	out := make([]string, 0, t.count-skip)
	for i := skip; i < t.count; i++ {
		out = append(out, t.lines[(t.start+i)%size])
	}
	return out
}
