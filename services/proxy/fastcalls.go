package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

const (
	// cutGrace is how long requests cut at the end of the drain have to
	// answer (503) before their connections fail; forceGrace how long
	// those still running then have to return. The same as pkg/service's
	// tracker on the net/http plane.
	cutGrace   = time.Second
	forceGrace = time.Second
)

// fastCalls knows every request of the fasthttp plane under way, from the
// handler's start to the end of its answer's body, so that a stop can end
// them in order, as pkg/service's in-flight tracker does for net/http:
// when the drain runs out each has its context cancelled with
// errStopping and its connection's reads cut, so that a request waiting
// for an instance or reading an upload answers 503 at once; cutGrace
// later, whatever still runs finds its connection's reads and writes
// failing.
type fastCalls struct {
	mu    sync.Mutex
	cut   bool // the drain ran out: requests are cut as they come
	calls map[*fastCall]struct{}
	idle  chan struct{} // closed when the last call ends, while wait waits

	timers []*time.Timer
	until  time.Time // when wait gives up
}

// fastCall is one request under way: its context, cancelled when the
// client goes away or the drain runs out, and its client's connection.
type fastCall struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	conn   net.Conn
	calls  *fastCalls
	ended  bool
}

func newFastCalls() *fastCalls { return &fastCalls{calls: map[*fastCall]struct{}{}} }

// begin registers a request on conn.
func (t *fastCalls) begin(conn net.Conn) *fastCall {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &fastCall{ctx: ctx, cancel: cancel, conn: conn, calls: t}
	t.mu.Lock()
	if t.cut {
		t.stop(c)
	}
	t.calls[c] = struct{}{}
	t.mu.Unlock()
	return c
}

// end forgets a request whose answer went out (or failed); it may be
// called more than once.
func (t *fastCalls) end(c *fastCall) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	c.cancel(nil)
	delete(t.calls, c)
	if len(t.calls) == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// beginStop arms the end of the drain; it returns at once.
func (t *fastCalls) beginStop(drain time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.until.IsZero() {
		return
	}
	t.until = time.Now().Add(drain + cutGrace + forceGrace)
	t.timers = []*time.Timer{
		time.AfterFunc(drain, t.cutAll),
		time.AfterFunc(drain+cutGrace, t.forceAll),
	}
}

func (t *fastCalls) cutAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cut = true
	for c := range t.calls {
		t.stop(c)
	}
}

// stop cancels c with errStopping and cuts its connection's reads: an
// upload's body read blocked on it returns at once. t.mu is held.
func (t *fastCalls) stop(c *fastCall) {
	c.cancel(errStopping)
	_ = c.conn.SetReadDeadline(time.Now())
}

// forceAll makes every read and write of the requests still under way
// fail at once, for those that did not heed their context: a download
// written to a client that reads slowly, say.
func (t *fastCalls) forceAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.calls {
		_ = c.conn.SetDeadline(time.Now())
	}
}

// wait blocks until every request ended or the stop's time is up, and
// reports how many are still running. It is called once beginStop was.
func (t *fastCalls) wait() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	timer := time.NewTimer(time.Until(t.until))
	defer timer.Stop()
	for len(t.calls) > 0 {
		idle := make(chan struct{})
		t.idle = idle
		t.mu.Unlock()
		select {
		case <-idle:
		case <-timer.C:
		}
		t.mu.Lock()
		if t.idle == idle {
			t.idle = nil
			break
		}
	}
	for _, tm := range t.timers {
		tm.Stop()
	}
	return len(t.calls)
}
