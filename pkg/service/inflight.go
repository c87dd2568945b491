package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// ErrStopping is the cause given to the requests still under way when a
// service's drain runs out, and the answer to in-process calls once its
// stop began: 503, which tells the client to try again.
var ErrStopping = fmt.Errorf("%w: the service is stopping", apierr.ErrUnavailable)

// inflight is a service's handler as the listener and in-process callers
// reach it. It knows every request under way, so that a stop can end
// them in order: new in-process calls are refused as soon as the stop
// begins; when the drain runs out, every request still running has its
// context cancelled with ErrStopping and its body cut, so that a handler
// blocked reading an upload returns at once and answers 503; a second
// later, whatever still runs finds its connection's reads and writes
// failing. Serve returns only once every request has returned, so the
// service never closes its stores under one.
type inflight struct {
	logger log.Logger
	h      http.Handler
	drain  *Drain[*call]
}

// call is one request under way.
type call struct {
	w      http.ResponseWriter
	cancel context.CancelCauseFunc
	body   *cutBody // nil when the request has none
}

func newInflight(logger log.Logger, h http.Handler) *inflight {
	return &inflight{logger: logger, h: h, drain: NewDrain(cutCall, forceCall)}
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

	// In-process calls are refused once the stop began: unlike the
	// listener, nothing else stops them coming. From End on, the call's
	// connection belongs to its server again (an in-process caller's may
	// serve another request), so no deadline is set on it any more.
	if !t.drain.Begin(c, local) {
		transport.WriteError(t.logger, w, ErrStopping)
		return
	}
	defer t.drain.End(c)
	t.h.ServeHTTP(w, r)
}

// beginStop refuses new in-process calls and arms the end of the drain
// (Drain.BeginStop). It returns at once.
func (t *inflight) beginStop(drain time.Duration) { t.drain.BeginStop(drain) }

// wait blocks until every request has returned or the stop's time is up,
// and reports how many are still running.
func (t *inflight) wait() int { return t.drain.Wait() }

// cutCall cancels c's context with ErrStopping, then cuts its body: a read
// blocked on the connection returns at once.
func cutCall(c *call) {
	c.cancel(ErrStopping)
	if c.body != nil {
		c.body.stop(c.w)
	}
}

// forceCall makes every read and write of c fail at once, for a handler
// that did not heed its context: one writing a download to a client that
// reads slowly, say.
func forceCall(c *call) {
	now := time.Now()
	rc := http.NewResponseController(c.w)
	_ = rc.SetReadDeadline(now)
	_ = rc.SetWriteDeadline(now)
}

// cutBody is a request's body that the end of a drain can cut: a read
// blocked on the connection fails at once with ErrStopping. It is the
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
		return 0, ErrStopping
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.cut.Load() {
		return n, ErrStopping
	}
	return n, err
}

// stop cuts the body of the request answered through w.
func (b *cutBody) stop(w http.ResponseWriter) {
	b.cut.Store(true)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
