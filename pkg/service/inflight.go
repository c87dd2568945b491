package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// errStopping is the cause given to the requests still under way when a
// service's drain runs out, and the answer to in-process calls once its
// stop began: 503, which tells the client to try again.
var errStopping = fmt.Errorf("%w: the service is stopping", apierr.ErrUnavailable)

const (
	// cutGrace is how long requests cut at the end of the drain have to
	// answer (503) and return before their connections are closed.
	cutGrace = time.Second
	// forceGrace is how long the requests still under way then have to
	// return, their connections' reads and writes failing at once,
	// before the service's resources are closed anyway.
	forceGrace = time.Second
)

// inflight is a service's handler as the listener and in-process callers
// reach it. It knows every request under way, so that a stop can end
// them in order: new in-process calls are refused as soon as the stop
// begins; when the drain runs out, every request still running has its
// context cancelled with errStopping and its body cut, so that a handler
// blocked reading an upload returns at once and answers 503; a second
// later, whatever still runs finds its connection's reads and writes
// failing. Serve returns only once every request has returned, so the
// service never closes its stores under one.
type inflight struct {
	logger log.Logger
	h      http.Handler

	mu       sync.Mutex
	stopping bool // in-process calls are refused
	cut      bool // the drain ran out: requests are cut as they come
	calls    map[*call]struct{}
	// idle, while wait waits, is closed when the last call returns.
	idle chan struct{}

	timers []*time.Timer
	until  time.Time // when wait gives up
}

// call is one request under way.
type call struct {
	w      http.ResponseWriter
	cancel context.CancelCauseFunc
	body   *cutBody // nil when the request has none
}

func newInflight(logger log.Logger, h http.Handler) *inflight {
	return &inflight{logger: logger, h: h, calls: map[*call]struct{}{}}
}

// ServeHTTP serves a request of the listener.
func (t *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) { t.serve(w, r, false) }

// local is the handler for in-process callers.
func (t *inflight) local() http.Handler { return localCalls{t} }

// localCalls serves in-process calls, which are refused once the stop
// began: unlike the listener, nothing else stops them coming.
type localCalls struct{ t *inflight }

func (l localCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.t.serve(w, r, true) }

func (t *inflight) serve(w http.ResponseWriter, r *http.Request, local bool) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	c := &call{w: w, cancel: cancel}
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		c.body = &cutBody{ReadCloser: r.Body}
		r.Body = c.body
	}

	t.mu.Lock()
	if local && t.stopping {
		t.mu.Unlock()
		transport.WriteError(t.logger, w, errStopping)
		return
	}
	if t.cut {
		t.stop(c)
	}
	t.calls[c] = struct{}{}
	t.mu.Unlock()
	defer t.done(c)
	t.h.ServeHTTP(w, r)
}

// done forgets a call that returned; from then on its connection belongs
// to its server again (an in-process caller's may serve another request),
// so no deadline is set on it any more.
func (t *inflight) done(c *call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.calls, c)
	if len(t.calls) == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// beginStop refuses new in-process calls and arms the end of the drain:
// after drain, requests still under way are cut; cutGrace later, their
// connections fail. It returns at once.
func (t *inflight) beginStop(drain time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return
	}
	t.stopping = true
	t.until = time.Now().Add(drain + cutGrace + forceGrace)
	t.timers = []*time.Timer{
		time.AfterFunc(drain, t.cutAll),
		time.AfterFunc(drain+cutGrace, t.forceAll),
	}
}

// cutAll cuts every request under way and every one that comes later.
func (t *inflight) cutAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cut = true
	for c := range t.calls {
		t.stop(c)
	}
}

// stop cancels c's context with errStopping, then cuts its body: a read
// blocked on the connection returns at once. The caller holds t.mu.
func (t *inflight) stop(c *call) {
	c.cancel(errStopping)
	if c.body != nil {
		c.body.stop(c.w)
	}
}

// forceAll makes every read and write of the requests still under way
// fail at once, for handlers that did not heed their context: one
// writing a download to a client that reads slowly, say.
func (t *inflight) forceAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for c := range t.calls {
		rc := http.NewResponseController(c.w)
		_ = rc.SetReadDeadline(now)
		_ = rc.SetWriteDeadline(now)
	}
}

// wait blocks until every request has returned or the stop's time is up,
// and reports how many are still running. It is called once beginStop
// was.
func (t *inflight) wait() int {
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
			break // timed out
		}
	}
	for _, tm := range t.timers {
		tm.Stop()
	}
	return len(t.calls)
}

// cutBody is a request's body that the end of a drain can cut: a read
// blocked on the connection fails at once with errStopping. It is the
// innermost wrapper of the body, below any that moves the connection's
// read deadline (an upload's idle deadline): such a wrapper moves the
// deadline before it reads through this one, which checks the cut after,
// so a cut is never undone.
type cutBody struct {
	io.ReadCloser
	cut atomic.Bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.cut.Load() {
		return 0, errStopping
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.cut.Load() {
		return n, errStopping
	}
	return n, err
}

// stop cuts the body of the request answered through w.
func (b *cutBody) stop(w http.ResponseWriter) {
	b.cut.Store(true)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
