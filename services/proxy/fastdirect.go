package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// The direct path of the fasthttp plane: a bodiless GET, HEAD or OPTIONS
// for a remote instance, from the client's request to the instance's
// answer, on fasthttp's RequestCtx and the Handler's own connections to
// the instances (forward.go), with the same steps as Handler.ServeHTTP and
// forwardDirect: request ID, route, token, placement, span, retry of the
// next instance after a refused connection (ejecting it) and of a fresh
// connection after a reused one failed before its answer, the response
// timeout, metrics and access line.

// fastAnswer is what the direct path keeps of one request, in one
// allocation; it is also the answer's body as fasthttp streams it.
type fastAnswer struct {
	s       *FastServer
	rc      *fasthttp.RequestCtx
	call    *fastCall
	ctx     context.Context
	method  string
	target  target
	begin   time.Time
	service string
	used    string
	status  int
	bytes   int64
	span    tracing.Server
	fwd     tracing.Forward

	// The body being streamed, and the connection it comes on.
	uc    *upConn
	addr  string
	body  io.Reader
	close bool // the connection ends with this answer
	eof   bool
	watch streamWatch
}

// fastMethod is m as one of net/http's method constants, without an
// allocation; "" for any other method.
func fastMethod(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	}
	return ""
}

// direct serves rc if it is for the direct path, and reports whether it
// did; any other request is the bridge's.
func (s *FastServer) direct(rc *fasthttp.RequestCtx, c *fastCall) bool {
	method := fastMethod(rc.Method())
	req := &rc.Request.Header
	// A request without Content-Length or Transfer-Encoding has a
	// length of -2 to fasthttp: no body.
	if cl := req.ContentLength(); method == "" || (cl != 0 && cl != -2) || len(req.Peek("Upgrade")) > 0 {
		return false
	}
	t, err := parseTarget(req.RequestURI())
	if err != nil {
		// The bridge refuses it, as net/http does.
		return false
	}
	service, order, owned := s.h.balancer.Route(t.path)
	for _, in := range order {
		if in.Local != nil {
			// Only the net/http plane can hand a request to an
			// http.Handler in this process.
			return false
		}
	}
	a := &fastAnswer{s: s, rc: rc, call: c, ctx: c.ctx, method: method, target: t, begin: time.Now(), service: service, status: http.StatusOK}
	a.begun()
	if err := validNames(req); err != nil {
		a.refuse(err)
		return true
	}
	if order, err = a.admit(owned, order); err != nil {
		a.refuse(err)
		return true
	}
	if s.h.opts.Tracing != nil {
		a.forwardSpan(service)
	}
	a.forward(order)
	return true
}

// begun gives the request its ID and its server span, as Handler.ServeHTTP
// and the net/http plane's otelhttp wrapper do.
func (a *fastAnswer) begun() {
	rc, req := a.rc, &a.rc.Request.Header
	if id := req.Peek("X-Request-Id"); len(id) > 0 {
		rc.Response.Header.SetBytesV("X-Request-Id", id)
	} else {
		id := newRequestID()
		req.Set("X-Request-Id", id)
		rc.Response.Header.Set("X-Request-Id", id)
	}
	if t := a.s.tracing; t != nil {
		a.ctx, a.span = t.Serve(a.ctx, a.method, traceHeaders(req))
		if a.span.Recording() {
			a.span.Describe(a.spanRequest())
		}
	}
}

// validNames refuses a request with a header name that is not an RFC 9110
// token ("X Y"), as net/http's server does before any handler runs; it
// would otherwise be forwarded as it is.
func validNames(req *fasthttp.RequestHeader) error {
	for k := range req.All() {
		if !validName(k) || len(k) == 0 {
			return fmt.Errorf("%w: invalid header name %q", apierr.ErrInvalidArgument, k)
		}
	}
	return nil
}

// spanRequest is what the server span says of the request.
func (a *fastAnswer) spanRequest() tracing.ServerRequest {
	req := &a.rc.Request.Header
	host := a.target.host
	if host == "" {
		host = string(req.Host())
	}
	return tracing.ServerRequest{
		Host:          host,
		RemoteAddr:    a.rc.RemoteAddr().String(),
		Path:          a.target.path,
		UserAgent:     string(req.UserAgent()),
		XForwardedFor: string(req.Peek("X-Forwarded-For")),
		Proto:         string(req.Protocol()),
	}
}

// admit checks the request as Handler.ServeHTTP does before it forwards
// anything: the route, the token, the user's placement and a running
// instance. It returns the instances to try, or the refusal.
func (a *fastAnswer) admit(owned bool, order []registry.Instance) ([]registry.Instance, error) {
	h, path := a.s.h, a.target.path
	if !owned {
		return nil, fmt.Errorf("%w: no service owns %s", apierr.ErrNotFound, path)
	}
	if !h.balancer.Public(a.service, a.method, path) {
		claims, err := verifyBearer(h.keys, a.rc.Request.Header.Peek("Authorization"))
		if err != nil {
			return nil, err
		}
		a.ctx = auth.WithClaims(a.ctx, claims)
		if order, err = h.balancer.Place(a.ctx, a.service, a.method, order); err != nil {
			return nil, err
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no instance of %s is running", apierr.ErrUnavailable, a.service)
	}
	return order, nil
}

// expect is fasthttp's ExpectHandler: a request that announces its body
// with "Expect: 100-continue" is checked before the 100 goes out, so one
// the proxy refuses gets its answer (400, 401, 404, 503) and never a 100, and
// its body is never sent; net/http sends the 100 only when the Handler
// first reads the body, which it does not for a refusal. A request it
// admits goes on to the bridge, whose Handler checks it again.
func (s *FastServer) expect(rc *fasthttp.RequestCtx) int {
	t, err := parseTarget(rc.Request.Header.RequestURI())
	var service string
	var order []registry.Instance
	var owned bool
	if err == nil {
		service, order, owned = s.h.balancer.Route(t.path)
	}
	c := s.calls.begin(rc.Conn())
	a := &fastAnswer{s: s, rc: rc, call: c, ctx: c.ctx, method: string(rc.Method()), target: t, begin: time.Now(), service: service, status: http.StatusOK}
	if err != nil {
		err = fmt.Errorf("%w: malformed request target", apierr.ErrInvalidArgument)
	} else if err = validNames(&rc.Request.Header); err == nil {
		_, err = a.admit(owned, order)
	}
	if err != nil {
		a.begun()
		a.refuse(err)
		// fasthttp closes the connection after this answer: the client may
		// have begun to send its body anyway.
		return a.status
	}
	s.calls.end(c)
	return fasthttp.StatusContinue
}

// target is a request's target as net/http reads it (url.ParseRequestURI):
// path, decoded, is what routes, and uri, as sent, what is forwarded.
// fasthttp's own path is cleaned and decoded (RequestCtx.Path), which
// would route "//api/…" or "/x/../api/…" where net/http does not and
// hide a "%2e%2e" from the service's own check.
type target struct {
	path string
	uri  []byte // RequestURI of the parsed URL: the target less any scheme and host
	host string // the host of an absolute-form target, which wins over Host
}

// parseTarget reads raw, the request target as sent. A plain origin-form
// target, a path of unreserved and sub-delimiter characters, is its own
// path and is forwarded as it is, without url.URL; any other goes
// through url.ParseRequestURI, as on net/http.
func parseTarget(raw []byte) (target, error) {
	if plainTarget(raw) {
		path := raw
		if q := bytes.IndexByte(raw, '?'); q >= 0 {
			path = raw[:q]
		}
		return target{path: string(path), uri: raw}, nil
	}
	u, err := url.ParseRequestURI(string(raw))
	if err != nil {
		return target{}, err
	}
	return target{path: u.Path, uri: []byte(u.RequestURI()), host: u.Host}, nil
}

// plainTarget reports whether raw is "/" followed by bytes url.URL keeps
// as they are in both Path and EscapedPath, and a query of no control
// byte.
func plainTarget(raw []byte) bool {
	if len(raw) == 0 || raw[0] != '/' {
		return false
	}
	query := false
	for _, c := range raw {
		switch {
		case query:
			if c < 0x20 || c == 0x7f {
				return false
			}
		case c == '?':
			query = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~/!$&'()*+,;=:@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// traceHeaders are the W3C headers of a request, for tracing.
func traceHeaders(req *fasthttp.RequestHeader) http.Header {
	hdr := http.Header{}
	if tp := req.Peek("Traceparent"); len(tp) > 0 {
		hdr["Traceparent"] = []string{string(tp)}
	}
	if ts := req.Peek("Tracestate"); len(ts) > 0 {
		hdr["Tracestate"] = []string{string(ts)}
	}
	return hdr
}

// forwardSpan starts the forward's span and puts its trace context in the
// request's traceparent, as tracing.Forward does on the net/http plane.
func (a *fastAnswer) forwardSpan(service string) {
	req := &a.rc.Request.Header
	r := (&http.Request{Method: a.method, Header: traceHeaders(req)}).WithContext(a.ctx)
	r, a.fwd = a.s.h.opts.Tracing.Forward(r, service)
	a.ctx = r.Context()
	req.Del("Traceparent")
	req.Del("Tracestate")
	for _, k := range []string{"Traceparent", "Tracestate"} {
		for _, v := range r.Header[k] {
			req.Add(k, v)
		}
	}
}

// verifyBearer checks the token of an "Authorization: Bearer …" header,
// with the same errors as transport.BearerToken and auth.Keys.Verify.
func verifyBearer(keys *auth.Keys, h []byte) (*auth.Claims, error) {
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: missing bearer token", apierr.ErrUnauthenticated)
	}
	scheme, token, ok := bytes.Cut(h, []byte(" "))
	token = bytes.TrimSpace(token)
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) || len(token) == 0 {
		return nil, fmt.Errorf("%w: authorization header is not a bearer token", apierr.ErrUnauthenticated)
	}
	return keys.Verify(string(token))
}

// refuse answers a request the proxy does not forward.
func (a *fastAnswer) refuse(err error) {
	a.status = writeFastError(a.s.h.logger, a.rc, err)
	a.bytes = int64(len(a.rc.Response.Body()))
	a.finish()
}

// forward sends the request to the first instance of order that accepts
// a connection, and hands the answer to fasthttp.
func (a *fastAnswer) forward(order []registry.Instance) {
	hdr := a.s.headers()
	defer a.s.putHeaders(hdr)
	var lastErr error = errNoInstance
	for _, in := range order {
		f, uc, err := a.roundTrip(in, hdr)
		if err != nil {
			lastErr = err
			if refused(err) {
				a.s.h.balancer.eject(a.ctx, in, err)
				continue
			}
			break
		}
		a.used = in.Addr
		a.answer(in.Addr, uc, f, hdr)
		return
	}
	if a.ctx.Err() != nil {
		lastErr = context.Cause(a.ctx)
	}
	a.failed(lastErr)
}

// failed answers a request no instance answered, as upstreamError does.
func (a *fastAnswer) failed(err error) {
	if errors.Is(err, context.Canceled) && a.ctx.Err() != nil {
		// The client went away; there is no one to answer. 499 is what
		// the access log and metrics record, as nginx does.
		a.status = 499
		a.rc.SetConnectionClose()
		a.finish()
		return
	}
	level.Warn(a.s.h.logger).Log("msg", "upstream failed", "service", a.service, "err", err)
	a.refuse(fmt.Errorf("%w: %s did not answer", apierr.ErrUnavailable, a.service))
}

// roundTrip writes the request to instance in and reads the answer's head
// into hdr, retrying once on a fresh connection when a reused one failed
// before any byte of an answer (the request is replayable).
func (a *fastAnswer) roundTrip(in registry.Instance, hdr http.Header) (framing, *upConn, error) {
	conns := a.s.h.conns
	for attempt := 0; ; attempt++ {
		uc, err := conns.get(a.ctx, in.Addr)
		if err != nil {
			return framing{}, nil, err
		}
		f, err := a.exchange(uc, in.Addr, hdr)
		if err == nil {
			return f, uc, nil
		}
		conns.discard(in.Addr, uc)
		clear(hdr)
		if a.ctx.Err() != nil {
			return framing{}, nil, context.Cause(a.ctx)
		}
		if attempt == 0 && uc.reused && (errors.Is(err, io.EOF) || errors.Is(err, errWrite)) {
			continue
		}
		return framing{}, nil, err
	}
}

// exchange writes the request on uc and reads the answer's head within
// the response timeout, looking every cutPoll whether the request's
// context ended or its client went away.
func (a *fastAnswer) exchange(uc *upConn, addr string, hdr http.Header) (framing, error) {
	var bound time.Time // zero: none
	now := time.Now()
	if t := a.s.h.opts.ResponseTimeout; t > 0 {
		bound = now.Add(t)
	}
	_ = uc.SetDeadline(pollUntil(now, bound))
	writeFastHead(uc.bw, a.rc, a.target, addr)
	if err := uc.bw.Flush(); err != nil {
		return framing{}, fmt.Errorf("%w: %w", errWrite, err)
	}
	for {
		if err := a.await(uc, bound); err != nil {
			return framing{}, err
		}
		if !headBuffered(uc.br) {
			_ = uc.SetDeadline(bound)
		}
		f, err := readHead(uc.br, a.method, hdr)
		if err != nil {
			return framing{}, err
		}
		if f.status >= 200 {
			return f, nil
		}
	}
}

// await waits for the first byte of an answer on uc until bound (zero:
// none), looking every cutPoll whether the request's context ended (the
// stop cut it) or its client went away (which cancels it).
func (a *fastAnswer) await(uc *upConn, bound time.Time) error {
	for {
		_, err := uc.br.Peek(1)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if a.ctx.Err() != nil {
			return context.Cause(a.ctx)
		}
		if clientGone(a.call.conn) {
			a.call.cancel(context.Canceled)
			return context.Canceled
		}
		now := time.Now()
		if !bound.IsZero() && !now.Before(bound) {
			return err
		}
		_ = uc.SetDeadline(pollUntil(now, bound))
	}
}

// writeFastHead is writeHead for a fasthttp request.
func writeFastHead(bw interface {
	Write([]byte) (int, error)
	WriteString(string) (int, error)
}, rc *fasthttp.RequestCtx, t target, addr string) {
	req := &rc.Request.Header
	bw.Write(req.Method())
	bw.WriteString(" ")
	bw.Write(t.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(addr)
	bw.WriteString("\r\n")
	// Every Connection line counts, as net/http joins them: a header
	// named on a second line is hop-by-hop too.
	connection := req.PeekAll("Connection")
	for k, v := range req.All() {
		switch string(k) {
		case "Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Content-Length":
			continue
		}
		if hopHeaders[string(k)] || connectionNames(connection, k) {
			continue
		}
		bw.Write(k)
		bw.WriteString(": ")
		bw.Write(v)
		bw.WriteString("\r\n")
	}
	if ta, ok := rc.RemoteAddr().(*net.TCPAddr); ok {
		var ip [64]byte
		bw.WriteString("X-Forwarded-For: ")
		bw.Write(ta.AddrPort().Addr().Unmap().AppendTo(ip[:0]))
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	if t.host != "" {
		// An absolute-form target names the host (RFC 9112, 3.2.2),
		// as net/http's Request.Host then does.
		bw.WriteString(t.host)
	} else {
		bw.Write(req.Host())
	}
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
}

// connectionNames reports whether the values of the Connection lines name
// the header k (RFC 9110, section 7.6.1).
func connectionNames(connection [][]byte, k []byte) bool {
	for _, line := range connection {
		for len(line) > 0 {
			var name []byte
			name, line, _ = bytes.Cut(line, []byte(","))
			if bytes.EqualFold(bytes.TrimSpace(name), k) {
				return true
			}
		}
	}
	return false
}
