package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/tracing"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// The fasthttp data plane serves the proxy when it has no instance in its
// own process (`ocis proxy server`): net/http's server costs the proxy
// about half of its CPU per small GET (docs/benchmarks.md, "net/http's
// floor, and fasthttp"). Bodiless reads, the hot path, are handled on
// fasthttp's RequestCtx from end to end (fastdirect.go); every other
// request is handed to the same Handler the net/http plane serves,
// through a bridge that streams both bodies (fastbridge.go), so uploads,
// logins and deletes keep the reverse proxy and its guarantees. A process
// with a local instance keeps the net/http plane: a colocated call hands
// the request to that instance's http.Handler.

// FastOptions tune a FastServer.
type FastOptions struct {
	// BodyTimeout bounds the time a request, headers and body, may take
	// to arrive, as transport.BodyTimeout does on net/http; an
	// authenticated upload replaces it with an idle bound. Zero means
	// transport.DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Tracing, when set, makes every request a server span, as
	// service.Parts.Tracing does on the net/http plane.
	Tracing *tracing.Service
}

// FastServer serves a Handler on fasthttp.
type FastServer struct {
	logger  log.Logger
	h       *Handler
	bridged *bridge
	tracing *tracing.Service
	srv     *fasthttp.Server
	calls   *fastCalls
	heads   sync.Pool // http.Header, for readHead
	// stopping is set once Shutdown began: a Serve returning then is
	// the shutdown's doing, not a failure.
	stopping atomic.Bool
}

// errStopping is the cause given to the requests still under way when
// the drain runs out: 503, which tells the client to try again, the same
// error pkg/service's in-flight tracker answers on the net/http plane.
var errStopping = service.ErrStopping

// NewFastServer returns a fasthttp server for h.
func NewFastServer(logger log.Logger, h *Handler, o FastOptions) *FastServer {
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = transport.DefaultBodyTimeout
	}
	s := &FastServer{logger: logger, h: h, tracing: o.Tracing, calls: newFastCalls()}
	s.bridged = &bridge{logger: logger, h: o.Tracing.Handler(h)}
	s.srv = &fasthttp.Server{
		Handler:      s.serve,
		ErrorHandler: s.malformed,
		// Requests that announce their body are checked before the 100
		// Continue; one refused gets its answer and no 100.
		ExpectHandler: s.expect,
		// As transport.Listen: the whole request within the body
		// timeout, then two minutes of keep-alive.
		ReadTimeout: o.BodyTimeout,
		IdleTimeout: 2 * time.Minute,
		// Bodies stream through, whatever their size; the services
		// behind set their own limits (413). fasthttp reads up to this
		// much of a body before it calls the handler and streams the
		// rest: one byte. So a request with a Content-Length is refused
		// or forwarded once the first byte of its body came, not 8 KiB
		// of it, but not before either: fasthttp reads that byte before
		// any handler runs, and a client that sends its headers and
		// waits is held until the body timeout (408) where net/http
		// refuses at once. A request that says "Expect: 100-continue"
		// is checked before the 100 (expect), and a chunked body is not
		// read before the handler.
		StreamRequestBody:            true,
		MaxRequestBodySize:           1,
		DisablePreParseMultipartForm: true,
		// fasthttp reads a request's head in one buffer per connection,
		// which bounds the head: 16 KiB, twice nginx's 8 KiB per header
		// line. net/http's 64 KiB bound costs nothing until used; here
		// it would cost 64 KiB per connection, 64 MB at a thousand.
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       4 << 10,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		// fasthttp logs some errors with the request's bytes in them,
		// Authorization included, whatever SecureErrorLogMessage says,
		// and logs a line for every malformed request, which anyone can
		// send: net/http logs neither.
		Logger: fastLogger{level.Debug(logger)},
	}
	return s
}

// Serve serves on ln until Shutdown; it returns nil after a Shutdown.
func (s *FastServer) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if s.stopping.Load() {
		return nil
	}
	if err == nil {
		err = errors.New("listener closed")
	}
	return err
}

// Shutdown stops accepting and drains the requests under way for drain;
// those still running then are cut (503) and, a second later, their
// connections fail (service.Drain). It returns once every connection closed or the stop's
// time is up, and reports how many requests were still running.
func (s *FastServer) Shutdown(drain time.Duration) int {
	s.stopping.Store(true)
	s.calls.beginStop(drain)
	ctx, cancel := context.WithDeadline(context.Background(), s.calls.drain.Deadline())
	defer cancel()
	if err := s.srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		level.Warn(s.logger).Log("msg", "shutdown", "err", err)
	}
	return s.calls.wait()
}

// serve is fasthttp's handler: the hot path on RequestCtx, the rest over
// the bridge.
func (s *FastServer) serve(rc *fasthttp.RequestCtx) {
	if s.unserved(rc) {
		return
	}
	c := s.calls.begin(rc.Conn())
	if !s.direct(rc, c) {
		s.bridged.serve(rc, c)
	}
}

// unserved answers, as net/http's server does before any handler runs, a
// request of an HTTP version other than 1.x (505) and "OPTIONS *" (200),
// and reports whether it did.
func (s *FastServer) unserved(rc *fasthttp.RequestCtx) bool {
	req := &rc.Request.Header
	if proto := req.Protocol(); len(proto) != len("HTTP/1.1") || proto[5] != '1' {
		rc.SetConnectionClose()
		rc.SetStatusCode(fasthttp.StatusHTTPVersionNotSupported)
		rc.Response.Header.SetContentType("text/plain; charset=utf-8")
		rc.SetBodyString("unsupported protocol version")
		return true
	}
	if string(req.RequestURI()) == "*" && string(req.Method()) == http.MethodOptions {
		rc.Response.Header.SetContentLength(0)
		return true
	}
	return false
}

// malformed answers a request fasthttp could not read, in the wire shape.
func (s *FastServer) malformed(rc *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		err = fmt.Errorf("%w: request headers too large", apierr.ErrTooLarge)
	case transport.TimedOut(err):
		err = fmt.Errorf("%w: request did not arrive in time", apierr.ErrRequestTimeout)
	default:
		err = fmt.Errorf("%w: malformed request", apierr.ErrInvalidArgument)
	}
	rc.SetConnectionClose()
	writeFastError(s.logger, rc, err)
}

// fastLogger is fasthttp's logger on the service's, at debug: it logs
// fasthttp's format, which says what kind of error it was, never its
// arguments, which may hold a request's bytes (a bearer token) or its
// addresses.
type fastLogger struct{ logger log.Logger }

func (l fastLogger) Printf(format string, _ ...any) {
	l.logger.Log("msg", "http server error", "kind", format)
}
