package service

import (
	"sync"
	"time"
)

const (
	// cutGrace is how long requests cut at the end of the drain have to
	// answer (503) and return before their connections are closed.
	cutGrace = time.Second
	// forceGrace is how long the requests still under way then have to
	// return, their connections' reads and writes failing at once,
	// before the service's resources are closed anyway.
	forceGrace = time.Second
)

// Drain knows every request of a listener under way, so that a stop can
// end them in order, whatever HTTP server the listener runs: when the
// drain runs out, each has cut called on it (its context cancelled with
// ErrStopping, its body's reads cut, so that it answers 503 at once), as
// has every request that comes later; cutGrace after that, force is
// called on those still running (their connections' reads and writes
// fail). pkg/service's in-flight tracker uses it for net/http, the
// proxy's fasthttp plane for its requests.
type Drain[C comparable] struct {
	cutCall, forceCall func(C) // called with mu held

	mu       sync.Mutex
	stopping bool // the stop began
	cut      bool // the drain ran out: requests are cut as they come
	calls    map[C]struct{}
	// idle, while Wait waits, is closed when the last request ends.
	idle chan struct{}

	timers []*time.Timer
	until  time.Time // when Wait gives up
}

// NewDrain returns a Drain that ends requests with cut and then force.
func NewDrain[C comparable](cut, force func(C)) *Drain[C] {
	return &Drain[C]{cutCall: cut, forceCall: force, calls: map[C]struct{}{}}
}

// Begin registers a request under way, and cuts it at once when the drain
// ran out already. With refuseStopping, a request that comes once the
// stop began is not registered, and Begin reports false.
func (d *Drain[C]) Begin(c C, refuseStopping bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if refuseStopping && d.stopping {
		return false
	}
	if d.cut {
		d.cutCall(c)
	}
	d.calls[c] = struct{}{}
	return true
}

// End forgets a request that returned; calling it again does nothing.
func (d *Drain[C]) End(c C) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.calls, c)
	if len(d.calls) == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// BeginStop arms the end of the drain: after drain, the requests still
// under way are cut; cutGrace later, forced. It returns at once, and does
// nothing the second time.
func (d *Drain[C]) BeginStop(drain time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return
	}
	d.stopping = true
	d.until = time.Now().Add(drain + cutGrace + forceGrace)
	d.timers = []*time.Timer{
		time.AfterFunc(drain, d.cutAll),
		time.AfterFunc(drain+cutGrace, d.forceAll),
	}
}

// Deadline is when Wait gives up: the end of the drain, the cut's grace
// and the force's. It is set once BeginStop was called.
func (d *Drain[C]) Deadline() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.until
}

func (d *Drain[C]) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for c := range d.calls {
		d.cutCall(c)
	}
}

func (d *Drain[C]) forceAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.calls {
		d.forceCall(c)
	}
}

// Wait blocks until every request has ended or the stop's time is up, and
// reports how many are still running. It is called once BeginStop was.
func (d *Drain[C]) Wait() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	timer := time.NewTimer(time.Until(d.until))
	defer timer.Stop()
	for len(d.calls) > 0 {
		idle := make(chan struct{})
		d.idle = idle
		d.mu.Unlock()
		select {
		case <-idle:
		case <-timer.C:
		}
		d.mu.Lock()
		if d.idle == idle {
			d.idle = nil
			break // timed out
		}
	}
	for _, tm := range d.timers {
		tm.Stop()
	}
	return len(d.calls)
}
