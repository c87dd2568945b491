package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// The bridge serves on the fasthttp plane every request the direct path
// does not take (uploads, logins, deletes, a local instance): it hands
// the request to the same Handler as the net/http plane, in a goroutine
// of its own, with the client's body streaming from fasthttp's request
// stream and the answer's body streaming back through a pipe. fasthttp
// writes an answer only once its handler returned, so the handler
// returns as soon as the Handler wrote its answer's head (or a first
// bufferful, or flushed), leaving the body to the pipe; an answer that
// ends before is written whole, with no pipe. Unlike fasthttpadaptor,
// nothing buffers a body whole.

// bridgeBuffer is how much of an answer is kept before it streams.
const bridgeBuffer = 32 << 10

// bridge hands requests to h.
type bridge struct {
	logger log.Logger
	h      http.Handler

	once sync.Once
	srv  *http.Server // what a request's context says serves it
}

// server is the *http.Server every bridged request's context holds under
// http.ServerContextKey, as net/http's do. It serves nothing: it tells
// httputil.ReverseProxy that a server recovers its panics, so that an
// instance's answer that breaks off mid-body panics with
// http.ErrAbortHandler and the client's answer is cut (the bridge
// recovers it), where without one ReverseProxy returns as if the answer
// were whole, and a chunked answer would end whole to the client. What
// net/http logs through a request's server goes to the service's log.
func (b *bridge) server() *http.Server {
	b.once.Do(func() {
		b.srv = &http.Server{ErrorLog: stdlog.New(log.NewStdlibAdapter(level.Warn(b.logger)), "", 0)}
	})
	return b.srv
}

// serve hands rc to the Handler and returns once the answer's head is
// known.
func (b *bridge) serve(rc *fasthttp.RequestCtx, c *fastCall) {
	r, err := bridgeRequest(rc, c, b.server())
	if err != nil {
		writeFastError(b.logger, rc, err)
		rc.SetConnectionClose()
		c.calls.end(c)
		return
	}
	w := &bridgeWriter{rc: rc, hdr: http.Header{}, status: http.StatusOK, ready: make(chan struct{}), handed: make(chan struct{}), done: make(chan struct{})}
	body, _ := r.Body.(*bridgeBody)
	watch := watchClient(c)
	go func() {
		defer func() {
			// As on net/http, a panic ends the request with its answer
			// cut, and is logged with its stack unless it is
			// http.ErrAbortHandler (a body that broke off), which is
			// how a handler asks for a cut answer.
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					level.Error(b.logger).Log("msg", "panic serving request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
				w.abort()
			}
			w.finish()
		}()
		b.h.ServeHTTP(w, r)
	}()
	<-w.ready
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHead()
	if w.finished && !w.aborted {
		// The whole answer is in: written from the buffer.
		watch.stop()
		rc.Response.SetBody(w.buf.Bytes())
		if body != nil {
			body.stop(rc)
			if !body.eof {
				lingerClose(rc)
			}
		}
		w.released = true
		c.calls.end(c)
		return
	}
	stream := &bridgeStream{w: w, body: body, c: c, watch: watch}
	rest := io.Reader(failing{errAborted})
	if !w.finished {
		pr, pw := io.Pipe()
		stream.pr, w.pw, rest = pr, pw, pr
		close(w.handed)
	}
	stream.r = io.MultiReader(bytes.NewReader(w.buf.Bytes()), rest)
	rc.Response.SetBodyStream(stream, w.size)
}

// lingerTime is how long a connection closed under a client still sending
// a body stays half open, as net/http's rstAvoidanceDelay.
const lingerTime = 500 * time.Millisecond

// lingerClose ends rc's connection after its answer the way net/http
// does when a body was left unread (closeWriteAndWait): the answer goes,
// the proxy's side is shut, and what the client still sends is read and
// dropped for lingerTime before the connection closes. fasthttp would
// close it at once, and a close with unread bytes is a reset, which may
// reach the client before it read its answer (a 401 or 503 to an upload).
func lingerClose(rc *fasthttp.RequestCtx) {
	rc.SetConnectionClose()
	conn := rc.Conn()
	// fasthttp closes a connection marked to close right after the
	// answer, never handing it to a hijacker: the answer is written here.
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(c net.Conn) {
		bw := bufio.NewWriter(c)
		if rc.Response.Write(bw) != nil || bw.Flush() != nil {
			return
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, c)
	})
}

// failing is a reader that fails with err: the end of an answer the
// Handler aborted, which must not look whole to the client.
type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

// errBadRequest answers a request target net/http cannot parse.
var errBadRequest = fmt.Errorf("%w: malformed request target", apierr.ErrInvalidArgument)

// errHeaderName answers a header name that is not a token (RFC 9110,
// section 5.1), which fasthttp reads and net/http refuses before its
// handler, with a plain 400 "invalid header name": here it is 400
// invalid_argument in the wire shape, as every other refusal of the
// proxy's, and the request never reaches an instance.
var errHeaderName = fmt.Errorf("%w: invalid header name", apierr.ErrInvalidArgument)

// bridgeHost is the host a request names: that of an absolute-form
// target, which wins over the Host header (RFC 9112, section 3.2.2), as
// net/http and the direct path take it.
func bridgeHost(u *url.URL, req *fasthttp.RequestHeader) string {
	if u.Host != "" {
		return u.Host
	}
	return string(req.Host())
}

// bridgeRequest builds the net/http request of rc, with c's context and
// srv as its server.
func bridgeRequest(rc *fasthttp.RequestCtx, c *fastCall, srv *http.Server) (*http.Request, error) {
	req := &rc.Request.Header
	u, err := url.ParseRequestURI(string(req.RequestURI()))
	if err != nil {
		return nil, errBadRequest
	}
	chunked := req.ContentLength() == -1
	hdr := http.Header{}
	for k, v := range req.All() {
		if len(k) == 0 || !validName(k) {
			return nil, errHeaderName
		}
		switch string(k) {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue
		case "Trailer":
			if chunked {
				// Announced in r.Trailer, below.
				continue
			}
		}
		key := string(k)
		hdr[key] = append(hdr[key], string(v))
	}
	r := (&http.Request{
		Method:     string(req.Method()),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       bridgeHost(u, req),
		RemoteAddr: rc.RemoteAddr().String(),
		RequestURI: string(req.RequestURI()),
		Body:       http.NoBody,
	}).WithContext(context.WithValue(c.ctx, http.ServerContextKey, srv))
	if !req.IsHTTP11() {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	switch n := req.ContentLength(); {
	case n > 0:
		r.ContentLength = int64(n)
	case n == -1:
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	}
	if chunked {
		// As net/http: a chunked body's announced trailers are keys of
		// r.Trailer, not a header, and get their values once the body
		// was read (bridgeBody.Read).
		for k := range req.Trailers() {
			if r.Trailer == nil {
				r.Trailer = http.Header{}
			}
			r.Trailer[http.CanonicalHeaderKey(string(k))] = nil
		}
	}
	if r.ContentLength != 0 {
		r.Body = &bridgeBody{rs: rc.RequestBodyStream(), c: c, hdr: req, trailer: &r.Trailer}
	}
	return r, nil
}

// bridgeBody is the client's body as the Handler reads it. A read that
// fails for any reason but a deadline is the client gone: the request's
// context is cancelled, so the Handler counts 499, as net/http's does.
// Once the answer ended, reads fail: fasthttp then owns the stream
// again, to drain it for the next request.
type bridgeBody struct {
	mu      sync.Mutex
	rs      io.Reader
	c       *fastCall
	hdr     *fasthttp.RequestHeader // where fasthttp puts the trailers it read
	trailer *http.Header            // the request's Trailer, filled at the end
	eof     bool
	stopped bool
}

func (b *bridgeBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rs.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.trailers()
	case err != nil && errors.Is(context.Cause(b.c.ctx), errStopping):
		// The stop cut the body (fastCalls.stop), not the client.
		return n, errStopping
	case err != nil && !transport.TimedOut(err) && b.c.ctx.Err() == nil && (errors.Is(err, io.ErrUnexpectedEOF) || clientGone(b.c.conn)):
		// The client went away mid-body. A body the client is still
		// there to have sent wrong (a broken chunk) is not that: its
		// error reaches the Handler, which answers it as net/http's.
		b.c.cancel(context.Canceled)
	}
	return n, err
}

func (b *bridgeBody) Close() error { return nil }

// trailers puts the trailers that came after the body in the request's
// Trailer, as net/http does, announced or not; b.mu is held.
func (b *bridgeBody) trailers() {
	for k := range b.hdr.Trailers() {
		vs := b.hdr.PeekAll(string(k))
		if len(vs) == 0 {
			continue
		}
		if *b.trailer == nil {
			*b.trailer = http.Header{}
		}
		key := http.CanonicalHeaderKey(string(k))
		(*b.trailer)[key] = (*b.trailer)[key][:0]
		for _, v := range vs {
			(*b.trailer)[key] = append((*b.trailer)[key], string(v))
		}
	}
}

// stop ends the Handler's reads of the body: one blocked on the client is
// woken by a deadline in the past, after which the connection cannot
// serve another request.
func (b *bridgeBody) stop(rc *fasthttp.RequestCtx) {
	if !b.mu.TryLock() {
		_ = rc.Conn().SetReadDeadline(time.Unix(1, 0))
		rc.SetConnectionClose()
		b.mu.Lock()
	}
	b.stopped = true
	b.mu.Unlock()
}

// bridgeWriter is the http.ResponseWriter of a bridged request.
type bridgeWriter struct {
	rc  *fasthttp.RequestCtx
	hdr http.Header // the live header, which the Handler may write at any time
	// head is hdr as it was at WriteHeader: what writeHead puts on the
	// answer. The Handler keeps writing hdr after (trailers, which
	// httputil.ReverseProxy adds once the body was copied), on its own
	// goroutine, while writeHead reads head on fasthttp's.
	head http.Header

	mu          sync.Mutex
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	size        int           // the answer's Content-Length, -1 when unknown
	ready       chan struct{} // closed when the head is to be written
	readyClosed bool
	handed      chan struct{} // closed when the body streams through pw
	pw          *io.PipeWriter
	finished    bool // the Handler returned
	released    bool // the request went back to fasthttp: rc is not ours
	aborted     bool // it panicked: the answer must not look whole
	done        chan struct{}
}

func (w *bridgeWriter) Header() http.Header { return w.hdr }

func (w *bridgeWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *bridgeWriter) writeHeaderLocked(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
	// The head is taken now, as net/http does at WriteHeader.
	w.head = w.hdr.Clone()
}

func (w *bridgeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writeHeaderLocked(http.StatusOK)
	if w.pw == nil && !w.readyClosed {
		w.buf.Write(p)
		if w.buf.Len() >= bridgeBuffer {
			w.signal()
		}
		w.mu.Unlock()
		return len(p), nil
	}
	w.mu.Unlock()
	// The head went: the body streams, once the pipe is there.
	<-w.handed
	return w.pw.Write(p)
}

// Flush hands the answer to fasthttp now: what was written goes out.
func (w *bridgeWriter) Flush() {
	w.mu.Lock()
	w.writeHeaderLocked(http.StatusOK)
	w.signal()
	w.mu.Unlock()
}

// SetReadDeadline lets the Handler move the client connection's read
// deadline (transport.IdleBody), through http.ResponseController. Once
// the request went back to fasthttp, which may serve another with the
// same RequestCtx, it fails: the transport's goroutine that sends the
// client's body to the instance may still call it after the Handler
// returned.
func (w *bridgeWriter) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return errClientGone
	}
	return w.rc.SetReadDeadline(t)
}

// SetWriteDeadline is http.ResponseController's too, and fails as
// SetReadDeadline does.
func (w *bridgeWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return errClientGone
	}
	return w.rc.SetWriteDeadline(t)
}

// signal closes ready once; w.mu is held.
func (w *bridgeWriter) signal() {
	if !w.readyClosed {
		w.readyClosed = true
		close(w.ready)
	}
}

// abort marks an answer that broke off.
func (w *bridgeWriter) abort() {
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
}

// finish runs when the Handler returned.
func (w *bridgeWriter) finish() {
	w.mu.Lock()
	w.writeHeaderLocked(http.StatusOK)
	w.finished = true
	w.signal()
	pw, aborted := w.pw, w.aborted
	w.mu.Unlock()
	if pw != nil {
		if aborted {
			_ = pw.CloseWithError(errAborted)
		} else {
			_ = pw.Close()
		}
	}
	close(w.done)
}

// errAborted ends the stream of an answer the Handler aborted, so
// fasthttp cuts the connection rather than end the body as if whole.
var errAborted = errors.New("proxy: answer aborted")

// writeHead puts the status and headers on rc; w.mu is held.
func (w *bridgeWriter) writeHead() {
	resp := &w.rc.Response
	w.size = -1
	if w.aborted {
		// The client's connection ends with this answer, cut short, as
		// net/http does for http.ErrAbortHandler.
		w.rc.SetConnectionClose()
	}
	resp.SetStatusCode(w.status)
	for k, vs := range w.head {
		switch k {
		case "Connection":
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), "close") {
					w.rc.SetConnectionClose()
				}
			}
			continue
		case "Content-Length":
			if n, err := strconv.Atoi(firstOf(vs)); err == nil && n >= 0 {
				w.size = n
			}
			continue
		case "Transfer-Encoding", "Trailer", "Keep-Alive":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// bridgeStream is the body of a bridged answer as fasthttp writes it.
type bridgeStream struct {
	w     *bridgeWriter
	r     io.Reader
	pr    *io.PipeReader
	body  *bridgeBody
	c     *fastCall
	watch *bridgeWatch
	read  int  // bytes fasthttp took
	eof   bool // it read to the end
}

func (s *bridgeStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

// complete reports whether fasthttp took the whole answer: to its end, as
// many bytes as announced, or none for a status that has no body. It
// stops short only when writing to the client failed.
func (s *bridgeStream) complete() bool {
	s.w.mu.Lock()
	status, size := s.w.status, s.w.size
	s.w.mu.Unlock()
	bodiless := status < http.StatusOK || status == http.StatusNoContent || status == http.StatusNotModified
	return s.eof || (size >= 0 && s.read >= size) || bodiless
}

// Close runs once the answer was written or failed: the Handler is told
// (its writes fail), its reads of the client's body end, and the request
// ends only once the Handler returned, so fasthttp never reads the
// client's connection under it.
func (s *bridgeStream) Close() error {
	s.watch.stop()
	if !s.complete() {
		// The client is gone mid-answer: the request is cut, as on
		// net/http, so that a Handler waiting for the instance's next
		// bytes returns now rather than when they come.
		s.c.cancel(context.Canceled)
	}
	if s.pr != nil {
		_ = s.pr.CloseWithError(errClientGone)
	}
	if s.body != nil {
		s.body.stop(s.w.rc)
	}
	<-s.w.done
	s.w.mu.Lock()
	s.w.released = true
	s.w.mu.Unlock()
	s.c.calls.end(s.c)
	return nil
}

// errClientGone fails the Handler's writes once fasthttp stopped writing
// the answer.
var errClientGone = errors.New("proxy: the client's answer ended")

// bridgeWatch looks every cutPoll, from the moment a request is handed to
// the Handler until its answer ended, whether its client went away, and
// then cancels the request's context: the Handler counts 499 and cuts the
// instance's request, as on net/http, whose background read cancels the
// context. fasthttp reads nothing while a request is under way, so
// without it a client leaving a DELETE, a login or an upload whose body
// arrived would go unnoticed until the instance answered.
type bridgeWatch struct {
	c *fastCall

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// watchClient starts the watch of c's client.
func watchClient(c *fastCall) *bridgeWatch {
	w := &bridgeWatch{c: c}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(cutPoll, w.look)
	return w
}

func (w *bridgeWatch) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.c.ctx.Err() != nil {
		return
	}
	if w.gone() {
		w.c.cancel(context.Canceled)
		return
	}
	w.timer.Reset(cutPoll)
}

// gone peeks at the client's connection. The peek takes no lock, so a
// body read under way does not hold it up; body bytes still to be read
// show a client that is there.
func (w *bridgeWatch) gone() bool { return clientGone(w.c.conn) }

// stop ends the watch before fasthttp owns the connection again; a look
// under way ends first.
func (w *bridgeWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}
