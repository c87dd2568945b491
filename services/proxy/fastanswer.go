package proxy

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// streamWatch looks every cutPoll, while an answer's body streams, whether
// its request's context ended or its client went away.
type streamWatch struct {
	mu     sync.Mutex
	timer  *time.Timer
	closed bool // the stream ended: nothing more to cut
	cut    bool // the connection was cut
}

// answer hands the instance's answer, whose head is in hdr, to fasthttp:
// a body whole in the connection's buffer is copied and the connection
// released at once; a longer one streams, and the connection is released
// once it was read to its end (Close).
func (a *fastAnswer) answer(addr string, uc *upConn, f framing, hdr http.Header) {
	resp := &a.rc.Response
	resp.SetStatusCode(f.status)
	a.status = f.status
	for k, vs := range hdr {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
	switch {
	case a.method == http.MethodHead || f.length == 0:
		if n, ok := parseLength([]byte(hdr.Get("Content-Length"))); ok && a.method == http.MethodHead {
			// A HEAD answer says how long the GET's would be.
			resp.Header.SetContentLength(int(n))
			resp.SkipBody = true
		}
		a.release(uc, addr, f.close)
		a.finish()
	case !f.chunked && f.length > 0 && int64(uc.br.Buffered()) >= f.length:
		b, _ := uc.br.Peek(int(f.length))
		resp.SetBody(b)
		_, _ = uc.br.Discard(int(f.length))
		a.bytes = f.length
		a.release(uc, addr, f.close)
		a.finish()
	default:
		a.uc, a.addr, a.close = uc, addr, f.close
		a.body = uc.body(f)
		size := -1
		if !f.chunked && f.length >= 0 {
			size = int(f.length)
		}
		// The wait for the body is unbounded in time; the watch cuts it
		// when the client leaves or the stop cuts the request.
		_ = uc.SetDeadline(time.Time{})
		a.watch.timer = time.AfterFunc(cutPoll, a.look)
		resp.SetBodyStream(a, size)
	}
}

// release gives back a connection whose answer was read to its end.
func (a *fastAnswer) release(uc *upConn, addr string, closing bool) {
	if closing {
		a.s.h.conns.discard(addr, uc)
		return
	}
	a.s.h.conns.put(addr, uc)
}

// look cuts the instance's connection of a streaming answer once its
// request's context ended or its client went away: a read blocked on a
// silent instance returns, and fasthttp ends the answer.
func (a *fastAnswer) look() {
	w := &a.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if a.ctx.Err() == nil && !clientGone(a.call.conn) {
		w.timer.Reset(cutPoll)
		return
	}
	w.cut = true
	_ = a.uc.SetDeadline(time.Unix(1, 0))
}

// Read streams the answer's body.
func (a *fastAnswer) Read(p []byte) (int, error) {
	n, err := a.body.Read(p)
	a.bytes += int64(n)
	if err == io.EOF {
		a.eof = true
	}
	return n, err
}

// Close ends the streamed answer: fasthttp calls it once the body was
// written, or failed. The connection is kept only if the body was read to
// its end and nothing cut it.
func (a *fastAnswer) Close() error {
	w := &a.watch
	w.mu.Lock()
	w.closed = true
	w.timer.Stop()
	cut := w.cut
	w.mu.Unlock()
	if a.uc != nil {
		a.uc.chunks.trailers = nil // trailers are not passed on by this plane
		a.release(a.uc, a.addr, a.close || !a.eof || cut)
		a.uc = nil
	}
	a.finish()
	return nil
}

// finish counts and logs the request, ends its spans and forgets it.
func (a *fastAnswer) finish() {
	took := time.Since(a.begin)
	a.fwd.End(a.status, a.used)
	a.span.End(a.status, 0, a.bytes)
	h := a.s.h
	h.metrics.observe(a.service, a.status, took.Seconds())
	if h.accessLog != nil {
		rc := a.rc
		keyvals := append(make([]any, 0, 24), "msg", "request", "method", a.method, "path", a.target.path, "status", a.status,
			"bytes", a.bytes, "took", took, "request_id", string(rc.Response.Header.Peek("X-Request-Id")), "upstream_service", a.service,
			"upstream", a.used, "remote", rc.RemoteAddr().String())
		if tid, ok := tracing.TraceID(a.ctx); ok {
			keyvals = append(keyvals, "trace_id", tid)
		}
		h.accessLog.Log(keyvals...)
	}
	a.s.calls.end(a.call)
}
