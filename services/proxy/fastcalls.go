package proxy

import (
	"context"
	"net"
	"time"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// fastCalls knows every request of the fasthttp plane under way, from the
// handler's start to the end of its answer's body, so that a stop can end
// them in order with the same service.Drain as pkg/service's in-flight
// tracker on net/http: when the drain runs out each has its context
// cancelled with errStopping and its connection's reads cut, so that a
// request waiting for an instance or reading an upload answers 503 at
// once; a second later, whatever still runs finds its connection's reads
// and writes failing.
type fastCalls struct{ drain *service.Drain[*fastCall] }

// fastCall is one request under way: its context, cancelled when the
// client goes away or the drain runs out, and its client's connection.
type fastCall struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	conn   net.Conn
	calls  *fastCalls
}

func newFastCalls() *fastCalls {
	return &fastCalls{drain: service.NewDrain(cutFastCall, forceFastCall)}
}

// begin registers a request on conn.
func (t *fastCalls) begin(conn net.Conn) *fastCall {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &fastCall{ctx: ctx, cancel: cancel, conn: conn, calls: t}
	t.drain.Begin(c, false)
	return c
}

// end forgets a request whose answer went out (or failed); it may be
// called more than once.
func (t *fastCalls) end(c *fastCall) {
	c.cancel(nil)
	t.drain.End(c)
}

// beginStop arms the end of the drain; it returns at once.
func (t *fastCalls) beginStop(drain time.Duration) { t.drain.BeginStop(drain) }

// wait blocks until every request ended or the stop's time is up, and
// reports how many are still running. It is called once beginStop was.
func (t *fastCalls) wait() int { return t.drain.Wait() }

// cutFastCall cancels c with errStopping and cuts its connection's reads:
// an upload's body read blocked on it returns at once.
func cutFastCall(c *fastCall) {
	c.cancel(errStopping)
	_ = c.conn.SetReadDeadline(time.Now())
}

// forceFastCall makes every read and write of c fail at once, for a
// request that did not heed its context: a download written to a client
// that reads slowly, say.
func forceFastCall(c *fastCall) { _ = c.conn.SetDeadline(time.Now()) }
