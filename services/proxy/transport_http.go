package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/tracing"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Handler is the proxy's HTTP side: request ID, access log, authentication,
// routing, and a streaming reverse proxy that retries another instance when
// one refuses the connection.
type Handler struct {
	logger    log.Logger
	accessLog log.Logger // nil when the access log is off
	balancer  *Balancer
	authn     transport.Authenticator
	keys      *auth.Keys // the fasthttp plane verifies tokens on header bytes
	opts      Options
	// proxy forwards uploads and every other request with a body, or
	// that may not be sent twice; conns carry the rest (forwardDirect).
	proxy   *httputil.ReverseProxy
	conns   *conns
	buffers *bufferPool
	metrics *metrics
}

// NewHandler returns the proxy handler. Tokens are checked with keys on every
// route but those the owning service declared public in the registry
// (login); the services check them again. Without options it forwards with
// DefaultOptions.
func NewHandler(logger log.Logger, balancer *Balancer, keys *auth.Keys, reg prometheus.Registerer, opts ...Option) *Handler {
	o := DefaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	h := &Handler{
		logger:   logger,
		balancer: balancer,
		authn:    transport.JWT(keys),
		keys:     keys,
		opts:     o,
		conns:    newConns(o.MaxConnsPerUpstream),
		buffers:  newBufferPool(),
		metrics:  newMetrics(reg),
	}
	if o.AccessLog {
		h.accessLog = level.Info(logger)
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.SetXForwarded()
		},
		Transport: &retrying{base: newUpstreamTransport(o), balancer: balancer},
		// The proxy already set the request's ID on the answer; one a
		// service sets too would make the header appear twice.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("X-Request-Id")
			return nil
		},
		BufferPool:   h.buffers,
		ErrorHandler: h.upstreamError,
		ErrorLog:     stdlog.New(log.NewStdlibAdapter(level.Warn(logger)), "", 0),
	}
	return h
}

// newUpstreamTransport is the pooled keep-alive transport to the services.
// Its buffers are copyBufferSize: each connection holds two, and at a
// thousand connections 64 KiB ones cost over a hundred megabytes. The
// response-header timeout starts once the whole request, body included,
// was written, so it never cuts a slow upload.
func newUpstreamTransport(o Options) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   maxIdlePerUpstream,
		MaxConnsPerHost:       o.MaxConnsPerUpstream,
		IdleConnTimeout:       upstreamIdle,
		ResponseHeaderTimeout: o.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       copyBufferSize,
		ReadBufferSize:        copyBufferSize,
	}
}

type routeKey struct{}

// upstreams is what ServeHTTP hands the transport: the instances to try, in
// order, which one answered, and the client's body.
type upstreams struct {
	service string
	order   []registry.Instance
	used    string
	body    *clientBody
	cut     cutter // the direct path's (forwardDirect)
}

// call is what ServeHTTP keeps of one request, in one allocation.
type call struct {
	rec recorder
	up  upstreams
	id  [1]string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	c := &call{rec: recorder{ResponseWriter: w, status: http.StatusOK}}
	rec, up := &c.rec, &c.up
	ids := r.Header["X-Request-Id"]
	if len(ids) == 0 || ids[0] == "" {
		// One slice for both headers: neither is modified later.
		c.id[0] = newRequestID()
		ids = c.id[:]
		r.Header["X-Request-Id"] = ids
	}
	id := ids[0]
	rec.id = ids[:1:1]
	w.Header()["X-Request-Id"] = rec.id
	var fwd tracing.Forward
	defer func() {
		took := time.Since(begin)
		fwd.End(rec.status, up.used)
		h.metrics.observe(up.service, rec.status, took.Seconds())
		if h.accessLog == nil {
			// Off, the line is not built: its values alone would cost
			// a dozen allocations.
			return
		}
		keyvals := append(make([]any, 0, 24), "msg", "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes.Load(), "took", took, "request_id", id, "upstream_service", up.service,
			"upstream", up.used, "remote", r.RemoteAddr)
		if tid, ok := tracing.TraceID(r.Context()); ok {
			keyvals = append(keyvals, "trace_id", tid)
		}
		h.accessLog.Log(keyvals...)
	}()

	service, order, owned := h.balancer.Route(r.URL.Path)
	if !owned {
		h.refuse(rec, r, fmt.Errorf("%w: no service owns %s", apierr.ErrNotFound, r.URL.Path))
		return
	}
	up.service = service
	public := h.balancer.Public(service, r.Method, r.URL.Path)
	if !public {
		ctx, err := h.authn(r)
		if err != nil {
			h.refuse(rec, r, err)
			return
		}
		// A service that keeps each user's data on one instance gets
		// the user's requests on that one only, or none (503).
		if order, err = h.balancer.Place(ctx, service, r.Method, order); err != nil {
			h.refuse(rec, r, err)
			return
		}
	}
	if len(order) == 0 {
		h.refuse(rec, r, fmt.Errorf("%w: no instance of %s is running", apierr.ErrUnavailable, service))
		return
	}
	up.order = order
	// The forward is a span, and its trace context replaces the
	// client's traceparent on every path below.
	r, fwd = h.opts.Tracing.Forward(r, service)
	// An instance in this process gets the request handed to its handler,
	// with its own auth and middleware, and no network hop: the colocated
	// call. Remote instances are balanced only when none is local. The
	// service reads the body from this connection, under this listener's
	// body timeout, and relaxes it itself for an upload it authenticated.
	for _, in := range order {
		if in.Local != nil {
			up.used = "in-process"
			in.Local.ServeHTTP(rec, r)
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		up.body = &clientBody{ReadCloser: r.Body}
		if !public {
			// An upload may take longer than the body timeout while
			// bytes keep coming; only a caller whose token was just
			// verified gets that, never an anonymous one, whose body
			// must arrive within the bound. The service behind bounds
			// its own routes again.
			up.body.ReadCloser = transport.IdleBody(w, r.Body, transport.DefaultUploadIdle)
		}
		r.Body = up.body
	}
	if up.body == nil && replayable(r) {
		h.forwardDirect(rec, r, up)
		return
	}
	h.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, up)))
}

// refuse answers a request the proxy does not forward; its body is never
// read, so the connection closes after the answer rather than wait for it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	transport.SkipBody(w, r)
	transport.WriteError(h.logger, w, err)
}

// upstreamError answers when no instance could be reached or the answer
// broke off.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	up, _ := r.Context().Value(routeKey{}).(*upstreams)
	// A body that hit the deadline also cancels the request's context;
	// the client is still there to be told, so this comes first.
	if up != nil && up.body != nil && up.body.timedOut.Load() {
		transport.WriteError(h.logger, w, fmt.Errorf("%w: request body did not arrive in time", apierr.ErrRequestTimeout))
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; there is no one to answer. 499 is what
		// the access log and metrics record, as nginx does.
		if rec, ok := w.(*recorder); ok {
			rec.status = 499
		}
		return
	}
	name := "the service"
	if up != nil {
		name = up.service
	}
	level.Warn(h.logger).Log("msg", "upstream failed", "service", name, "err", err)
	transport.WriteError(h.logger, w, fmt.Errorf("%w: %s did not answer", apierr.ErrUnavailable, name))
}

// retrying sends a request to the first instance that accepts the
// connection. A refused connection means nothing of the request was sent, so
// trying the next instance is safe even for uploads.
type retrying struct {
	base http.RoundTripper
	// balancer ejects an instance that refused.
	balancer *Balancer
}

func (t *retrying) RoundTrip(r *http.Request) (*http.Response, error) {
	up, ok := r.Context().Value(routeKey{}).(*upstreams)
	if !ok {
		return nil, errors.New("proxy: request without upstreams")
	}
	// The transport closes the body when a dial fails; the retry on the
	// next instance still needs it, and ReverseProxy closes it when the
	// request ends. The wrapping is done here, not in ServeHTTP, because
	// ReverseProxy hands the transport its own wrapper of the body, which
	// refuses every read once closed.
	var body *retryBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &retryBody{ReadCloser: r.Body}
		r.Body = body
	}
	var lastErr error
	for _, in := range up.order {
		r.URL.Host = in.Addr
		r.Host = in.Addr
		resp, err := t.base.RoundTrip(r)
		if err == nil {
			up.used = in.Addr
			return resp, nil
		}
		lastErr = err
		if !refused(err) || (body != nil && body.read.Load()) {
			return nil, err
		}
		t.balancer.eject(r.Context(), in, err)
	}
	return nil, lastErr
}

func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// retryBody ignores Close, so a failed attempt cannot spend the body, and
// remembers whether any byte was read.
type retryBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *retryBody) Close() error { return nil }

// clientBody is the body of the client's request as the proxy forwards it;
// it notes whether a read hit the connection's deadline, so that the answer
// is 408 for the client's slowness, not 503 for the service's.
type clientBody struct {
	io.ReadCloser
	timedOut atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && transport.TimedOut(err) {
		b.timedOut.Store(true)
	}
	return n, err
}

// recorder notes the status and size of an answer for the access log,
// and keeps the request's ID on it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  atomic.Int64
	id     []string // the X-Request-Id value
}

// WriteHeader puts the request's ID back on a final answer whose headers
// lost it: httputil.ReverseProxy clears them all after relaying an
// instance's informational answer (the 100 to an upload that says
// Expect).
func (r *recorder) WriteHeader(code int) {
	r.status = code
	if code >= http.StatusOK {
		if h := r.ResponseWriter.Header(); len(h["X-Request-Id"]) == 0 {
			h["X-Request-Id"] = r.id
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.bytes.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
