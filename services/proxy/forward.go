package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// The proxy forwards requests that have no body and may be sent twice
// (GET, HEAD, OPTIONS: every download and listing, the hot path) over its
// own HTTP/1.1 connections: the handler's goroutine writes the request and
// reads the answer itself. net/http's Transport, which still carries
// everything else (uploads, deletes, logins), runs two goroutines per
// connection and hands every request and answer between them; on small
// GETs that hand-over, httputil.ReverseProxy's copies of the request and
// its headers, and their allocations cost more than the forwarding itself.

// Options tune a Handler's forwarding to remote instances.
type Options struct {
	// ResponseTimeout bounds the wait for a service's answer (its status
	// line and headers) once the whole request was sent, so a slow upload
	// is never cut by it; a body streaming back is not bounded by it
	// either. Zero means no bound. The proxy's --request-timeout.
	ResponseTimeout time.Duration
	// MaxConnsPerUpstream caps the connections the proxy keeps to one
	// instance on each of its two paths; requests beyond it wait for a
	// connection. Zero means no cap. The cap bounds what a flood can make
	// the proxy hold (descriptors, buffers); it is not what keeps memory
	// low at a thousand connections, the buffer sizes are. A low cap
	// would let slow uploads, each holding a connection for its whole
	// body, queue every other request behind them.
	MaxConnsPerUpstream int
	// AccessLog writes one line per request at info level; off, the line
	// is not even built.
	AccessLog bool
	// Tracing, when set, makes each forward a span whose context goes to
	// the instance in the traceparent header; nil traces nothing.
	Tracing *tracing.Service
}

// DefaultOptions are the options of NewHandler without any.
func DefaultOptions() Options {
	return Options{ResponseTimeout: 30 * time.Second, MaxConnsPerUpstream: 1024, AccessLog: true}
}

// Option changes one of a Handler's Options.
type Option func(*Options)

// WithOptions sets every option at once.
func WithOptions(o Options) Option { return func(dst *Options) { *dst = o } }

const (
	// copyBufferSize is the size of the buffers bodies stream through.
	copyBufferSize = 32 << 10
	// upstreamIdle is how long an idle connection to an instance is kept:
	// well under the services' own idle timeout (2 minutes), so that the
	// proxy, not the service, closes it and a request never meets a
	// connection the service has just closed.
	upstreamIdle = 30 * time.Second
	// maxIdlePerUpstream bounds the idle connections kept per instance.
	maxIdlePerUpstream = 128
)

// replayable reports whether r may go through the direct path: no body,
// and a method that a retry on a fresh connection cannot make happen
// twice, as net/http's Transport decides.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return (r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 &&
		r.Header.Get("Upgrade") == "" && len(r.TransferEncoding) == 0
}

// hopHeaders are the headers that describe one connection, not the
// request, and are never forwarded (RFC 9110, section 7.6.1).
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// skipped reports whether header k is not to be forwarded: a hop-by-hop
// header or one its message's Connection header names.
func skipped(k string, connection []string) bool {
	if hopHeaders[k] {
		return true
	}
	for _, v := range connection {
		for _, name := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(name)) == k {
				return true
			}
		}
	}
	return false
}

// upConn is one connection to an instance.
type upConn struct {
	net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool
	// The readers of the current answer's body (see body).
	fixed  fixedBody
	chunks chunkedBody
}

// conns are the direct path's connections, per instance address.
type conns struct {
	dialer  net.Dialer
	maxOpen int

	mu    sync.Mutex
	hosts map[string]*hostConns
}

// hostConns are the connections to one instance: the idle ones, how many
// are open, and the requests waiting for one when the cap is reached.
type hostConns struct {
	idle    []*upConn
	open    int
	waiters []chan *upConn // a nil receive means: dial one yourself
}

func newConns(maxOpen int) *conns {
	return &conns{
		dialer:  net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second},
		maxOpen: maxOpen,
		hosts:   map[string]*hostConns{},
	}
}

// get returns an idle connection to addr, or a new one, waiting while the
// cap holds every connection busy.
func (c *conns) get(ctx context.Context, addr string) (*upConn, error) {
	c.mu.Lock()
	h := c.hosts[addr]
	if h == nil {
		h = &hostConns{}
		c.hosts[addr] = h
	}
	now := time.Now()
	for len(h.idle) > 0 {
		uc := h.idle[len(h.idle)-1]
		h.idle = h.idle[:len(h.idle)-1]
		if now.Sub(uc.idleAt) < upstreamIdle {
			c.mu.Unlock()
			uc.reused = true
			return uc, nil
		}
		h.open--
		_ = uc.Close()
	}
	if c.maxOpen > 0 && h.open >= c.maxOpen {
		wait := make(chan *upConn, 1)
		h.waiters = append(h.waiters, wait)
		c.mu.Unlock()
		select {
		case uc := <-wait:
			if uc != nil {
				uc.reused = true
				return uc, nil
			}
			// A connection closed: its place is ours, already counted.
			return c.dial(ctx, addr)
		case <-ctx.Done():
			c.mu.Lock()
			for i, w := range h.waiters {
				if w == wait {
					h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			// What was handed over meanwhile goes to the next in line.
			select {
			case uc := <-wait:
				if uc != nil {
					c.put(addr, uc)
				} else {
					c.closed(addr)
				}
			default:
			}
			return nil, context.Cause(ctx)
		}
	}
	h.open++
	c.mu.Unlock()
	return c.dial(ctx, addr)
}

// dial opens a connection whose place in the count is already taken; on
// failure it gives the place back.
func (c *conns) dial(ctx context.Context, addr string) (*upConn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.closed(addr)
		return nil, err
	}
	return &upConn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// put hands a connection whose last answer was read in full to a waiting
// request, or keeps it idle.
func (c *conns) put(addr string, uc *upConn) {
	c.mu.Lock()
	h := c.hosts[addr]
	if len(h.waiters) > 0 {
		w := h.waiters[0]
		h.waiters = h.waiters[1:]
		c.mu.Unlock()
		w <- uc
		return
	}
	if len(h.idle) >= maxIdlePerUpstream {
		h.open--
		c.mu.Unlock()
		_ = uc.Close()
		return
	}
	uc.idleAt = time.Now()
	h.idle = append(h.idle, uc)
	c.mu.Unlock()
}

// discard closes a connection that cannot serve another request.
func (c *conns) discard(addr string, uc *upConn) {
	_ = uc.Close()
	c.closed(addr)
}

// closed gives the place of a closed connection to a waiting request, or
// back to the count.
func (c *conns) closed(addr string) {
	c.mu.Lock()
	h := c.hosts[addr]
	if len(h.waiters) > 0 {
		w := h.waiters[0]
		h.waiters = h.waiters[1:]
		c.mu.Unlock()
		w <- nil
		return
	}
	h.open--
	c.mu.Unlock()
}

// closeIdle closes every idle connection.
func (c *conns) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hosts {
		for _, uc := range h.idle {
			_ = uc.Close()
			h.open--
		}
		h.idle = nil
	}
}

// CloseIdle closes the idle connections to the instances, on both paths;
// the proxy's Run calls it when it stops, so a restarted proxy leaves no
// connection behind.
func (h *Handler) CloseIdle() {
	h.conns.closeIdle()
	if t, ok := h.proxy.Transport.(*retrying); ok {
		if ct, ok := t.base.(interface{ CloseIdleConnections() }); ok {
			ct.CloseIdleConnections()
		}
	}
}

// bufferPool gives the copies of bodies their buffers, so streaming a large
// body costs few system calls and no garbage. Buffers are copyBufferSize:
// at a thousand connections, larger ones cost memory without speed.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}}
}

// Get and Put implement httputil.BufferPool.
func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// errNoInstance is returned when every instance refused the connection.
var errNoInstance = errors.New("proxy: no instance accepted the connection")

// forwardDirect sends a replayable request to the first instance of up
// that accepts a connection, and streams the answer back. Errors before
// the answer began go to upstreamError, as on the other path; an error
// while the body streams aborts the client's connection, so a truncated
// answer is never taken for a whole one.
func (h *Handler) forwardDirect(w http.ResponseWriter, r *http.Request, up *upstreams) {
	ctx := r.Context()
	cut := &up.cut
	defer cut.disarm()
	var lastErr error = errNoInstance
	for _, in := range up.order {
		f, uc, err := h.roundTrip(ctx, w.Header(), r, in, cut)
		if err != nil {
			lastErr = err
			if refused(err) {
				h.balancer.eject(ctx, in, err)
				continue
			}
			break
		}
		up.used = in.Addr
		h.copyAnswer(w, in.Addr, uc, f, cut)
		return
	}
	if ctx.Err() != nil {
		lastErr = context.Cause(ctx)
	}
	h.upstreamError(w, r.WithContext(context.WithValue(ctx, routeKey{}, up)), lastErr)
}

// roundTrip writes r to instance in and reads the answer's head. A reused
// connection that fails before any byte of the answer arrived was most
// likely closed by the instance while idle; the request is sent once more
// on a fresh one, which is safe because it is replayable.
func (h *Handler) roundTrip(ctx context.Context, hdr http.Header, r *http.Request, in registry.Instance, cut *cutter) (framing, *upConn, error) {
	for attempt := 0; ; attempt++ {
		uc, err := h.conns.get(ctx, in.Addr)
		if err != nil {
			return framing{}, nil, err
		}
		cut.watch(uc)
		f, err := h.exchange(ctx, hdr, r, in.Addr, uc, cut)
		if err == nil {
			return f, uc, nil
		}
		cut.release()
		h.conns.discard(in.Addr, uc)
		// What a broken answer left in the client's headers goes: the
		// client gets an error of the proxy's, or the next attempt's.
		for k := range hdr {
			if k != "X-Request-Id" {
				delete(hdr, k)
			}
		}
		if ctx.Err() != nil {
			return framing{}, nil, context.Cause(ctx)
		}
		if attempt == 0 && uc.reused && (errors.Is(err, io.EOF) || errors.Is(err, errWrite)) {
			continue
		}
		return framing{}, nil, err
	}
}

// errWrite marks a failure to send the request.
var errWrite = errors.New("write request")

// cutPoll is how long a request waits for the first byte of an answer
// before it looks whether its context ended (the client went away, or the
// service's stop cut it). Polling the context this way costs nothing on
// an answer that comes within it, where context.AfterFunc would allocate
// and register with the request's context on every request; a request
// whose answer is slower pays a timer every cutPoll.
const cutPoll = 100 * time.Millisecond

// exchange writes the request on uc and reads the answer's status line and
// headers, into hdr, within the response timeout. A small answer, its head
// and body in the connection's buffer at once, is read with one deadline
// set and no context watch; anything that has to wait past that (a head
// arriving in pieces, a body larger than the buffer) arms cut, which cuts
// the connection as soon as ctx ends.
func (h *Handler) exchange(ctx context.Context, hdr http.Header, r *http.Request, addr string, uc *upConn, cut *cutter) (framing, error) {
	var bound time.Time // zero: none
	now := time.Now()
	if h.opts.ResponseTimeout > 0 {
		bound = now.Add(h.opts.ResponseTimeout)
	}
	// One deadline for the write and the wait: the request's head is
	// small, so a write that does not go through within it meets an
	// instance that reads nothing.
	cut.deadline(uc, pollUntil(now, bound))
	writeHead(uc.bw, r, addr)
	if err := uc.bw.Flush(); err != nil {
		return framing{}, fmt.Errorf("%w: %w", errWrite, err)
	}
	armed := false
	for {
		if !armed {
			if err := awaitByte(ctx, uc, cut, bound); err != nil {
				return framing{}, err
			}
			if !headBuffered(uc.br) {
				// The deadline first: a cut that fires as the watch
				// begins must not be undone.
				armed = true
				cut.deadline(uc, bound)
				cut.arm(ctx)
			}
		}
		f, err := readHead(uc.br, r.Method, hdr)
		if err != nil {
			return framing{}, err
		}
		if f.status < 200 {
			continue // an interim answer; the final one follows
		}
		if f.chunked || f.length < 0 || int64(uc.br.Buffered()) < f.length {
			// The body streams: unbounded in time, watched by the cut.
			cut.deadline(uc, time.Time{})
			cut.arm(ctx)
		}
		// Otherwise the deadline stays: nothing reads or writes on uc
		// before its next exchange sets its own.
		return f, nil
	}
}

// awaitByte waits for the first byte of an answer on uc, until bound (zero:
// none), looking at ctx every cutPoll. io.EOF means the connection closed
// before it.
func awaitByte(ctx context.Context, uc *upConn, cut *cutter, bound time.Time) error {
	for {
		_, err := uc.br.Peek(1)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		now := time.Now()
		if !bound.IsZero() && !now.Before(bound) {
			return err
		}
		cut.deadline(uc, pollUntil(now, bound))
	}
}

// pollUntil is the deadline of the next wait: cutPoll from now, or bound if
// that comes first.
func pollUntil(now, bound time.Time) time.Time {
	next := now.Add(cutPoll)
	if !bound.IsZero() && bound.Before(next) {
		return bound
	}
	return next
}

// headBuffered reports whether a whole head (status line and headers, up
// to the empty line) is in br's buffer, so reading it cannot wait.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// writeHead writes the request line and headers of r as the proxy
// forwards it to addr: hop-by-hop headers dropped, X-Forwarded-For replaced
// by the client's address (the services believe its last entry, as the
// proxy's own), X-Forwarded-Host and -Proto set, as
// httputil.ProxyRequest.SetXForwarded does on the other path.
func writeHead(bw *bufio.Writer, r *http.Request, addr string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(addr)
	bw.WriteString("\r\n")
	connection := r.Header["Connection"]
	for k, vs := range r.Header {
		switch k {
		case "Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Content-Length":
			continue
		}
		if skipped(k, connection) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(host)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
}

// copyAnswer writes the instance's answer, whose headers readAnswer put in
// place, to the client: its status and its body, flushed as it comes when
// its length is unknown, then its trailers. The connection goes back to
// the pool once the body was read to its end.
func (h *Handler) copyAnswer(w http.ResponseWriter, addr string, uc *upConn, f framing, cut *cutter) {
	w.WriteHeader(f.status)
	var err error
	if n := f.length; !f.chunked && n >= 0 && int64(uc.br.Buffered()) >= n {
		// A small answer is in the connection's buffer whole: written
		// from there, with no copy buffer.
		b, _ := uc.br.Peek(int(n))
		if _, werr := w.Write(b); werr != nil {
			err = fmt.Errorf("%w: %w", errClientWrite, werr)
		}
		_, _ = uc.br.Discard(int(n))
	} else {
		buf := h.buffers.Get()
		err = copyBody(w, uc.body(f), buf, f.length < 0)
		h.buffers.Put(buf)
	}
	var trailers http.Header
	if f.chunked {
		// Taken before the connection may serve someone else.
		trailers, uc.chunks.trailers = uc.chunks.trailers, nil
	}
	fired := cut.release()
	if err != nil || fired || f.close {
		h.conns.discard(addr, uc)
	} else {
		h.conns.put(addr, uc)
	}
	if err != nil {
		if errors.Is(err, errClientWrite) {
			return // the client went away; there is no one to tell
		}
		// The status is out; only a cut connection tells the client
		// the body is not whole.
		panic(http.ErrAbortHandler)
	}
	hdr := w.Header()
	for k, vs := range trailers {
		hdr[http.TrailerPrefix+k] = vs
	}
}

// cutter cuts the instance's connection of a forwarded request when the
// request's context ends (the client went away, or the service stops and
// cut it): a read or write blocked on that connection fails at once. One
// per request, whichever connection it is on; it watches the context only
// once armed, which a request that waits past a poll or streams a body
// does (exchange).
type cutter struct {
	stop func() bool // ends the context watch; nil until armed

	mu   sync.Mutex
	conn *upConn
	cut  bool
}

// arm makes the cutter watch ctx, once.
func (c *cutter) arm(ctx context.Context) {
	if c.stop == nil {
		c.stop = context.AfterFunc(ctx, c.fire)
	}
}

// disarm ends the watch, if any; the request's goroutine calls it when the
// request is done.
func (c *cutter) disarm() {
	if c.stop != nil {
		c.stop()
	}
}

// fire cuts the watched connection, and any watched later.
func (c *cutter) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	if c.conn != nil {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	}
}

// watch makes uc the connection to cut.
func (c *cutter) watch(uc *upConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = uc
	if c.cut {
		_ = uc.SetDeadline(time.Unix(1, 0))
	}
}

// deadline sets uc's deadline to t, unless the cut came: then the past
// deadline stays. Every deadline of an exchange goes through here, so that
// a cut firing between two of them is never undone by the second, leaving
// a body copy blocked on a silent instance after the client has gone.
func (c *cutter) deadline(uc *upConn, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		t = time.Unix(1, 0)
	}
	_ = uc.SetDeadline(t)
}

// release stops watching and reports whether the cut came, in which case
// the connection's deadline is spent and it must not be reused.
func (c *cutter) release() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = nil
	return c.cut
}

// errClientWrite marks a failure to write to the client.
var errClientWrite = errors.New("write to client")

// copyBody copies src to w through buf; flush sends every piece at once,
// for answers of unknown length, which may be streams.
func copyBody(w http.ResponseWriter, src io.Reader, buf []byte, flush bool) error {
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("%w: %w", errClientWrite, err)
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return fmt.Errorf("%w: %w", errClientWrite, err)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// ReadFrom lets a body written through the recorder reach the connection's
// own ReadFrom: a file the colocated storage serves goes out with sendfile
// rather than through a buffer.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{r.ResponseWriter}, src)
	}
	r.bytes.Add(n)
	return n, err
}

// writerOnly hides every method of a writer but Write, so io.Copy cannot
// come back to the ReadFrom that called it.
type writerOnly struct{ io.Writer }
