package transport

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// Router maps "METHOD /path" patterns to go-kit endpoints. Unlike a bare
// http.ServeMux it answers unknown paths and wrong methods in the JSON error
// shape, so a client never has to parse a plain-text error.
type Router struct {
	logger  log.Logger
	authn   Authenticator
	trusted []netip.Prefix
	routes  *http.ServeMux
	paths   *http.ServeMux
	allowed map[string][]string // path pattern → methods, for the Allow header
}

// NewRouter returns a router whose protected routes let a request through
// only when authn accepts it; authn may be nil only if every route is public.
func NewRouter(logger log.Logger, authn Authenticator, opts ...RouterOption) *Router {
	rt := &Router{
		logger:  logger,
		authn:   authn,
		trusted: DefaultTrustedProxies(),
		routes:  http.NewServeMux(),
		paths:   http.NewServeMux(),
		allowed: map[string][]string{},
	}
	for _, o := range opts {
		o(rt)
	}
	return rt
}

// RouterOption adjusts a router.
type RouterOption func(*Router)

// TrustedProxies names the peers whose X-Forwarded-For tells the client's
// address (ClientAddrFrom); the default is loopback.
func TrustedProxies(prefixes []netip.Prefix) RouterOption {
	return func(rt *Router) { rt.trusted = slices.Clone(prefixes) }
}

// RouteOption adjusts one route.
type RouteOption func(*route)

type route struct {
	public  bool
	status  int
	maxBody int64
	encode  httptransport.EncodeResponseFunc
}

// Public lets a route through without a bearer token (login, for one).
func Public() RouteOption { return func(r *route) { r.public = true } }

// Status sets the success status of a route (default 200).
func Status(code int) RouteOption { return func(r *route) { r.status = code } }

// MaxBody sets the request body limit of a route; 0 means no limit, for
// routes that stream.
func MaxBody(n int64) RouteOption { return func(r *route) { r.maxBody = n } }

// Encode replaces the JSON response encoder of a route, for answers that are
// not JSON (a file's content). The encoder can reach the request with
// RequestFrom.
func Encode(enc httptransport.EncodeResponseFunc) RouteOption {
	return func(r *route) { r.encode = enc }
}

type requestKey struct{}

// callCtx is the context of every endpoint call the router makes: the
// request's context, which it answers for, and the call itself under
// requestKey. One value instead of context.WithValue's, which costs a
// context and the boxed call apart on every request.
type callCtx struct {
	context.Context
	r  *http.Request
	rt *Router
}

// Value answers requestKey with the call and anything else as the
// request's context does.
func (c *callCtx) Value(key any) any {
	if key == (requestKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// String names the context for debugging, as the stdlib's do.
func (c *callCtx) String() string { return "transport.callCtx" }

// callFrom returns the router's call ctx is part of, or nil.
func callFrom(ctx context.Context) *callCtx {
	c, _ := ctx.Value(requestKey{}).(*callCtx)
	return c
}

// RequestFrom returns the HTTP request an endpoint call came from, for
// encoders that answer according to it (Range, conditional requests).
func RequestFrom(ctx context.Context) (*http.Request, bool) {
	c := callFrom(ctx)
	if c == nil {
		return nil, false
	}
	return c.r, true
}

// ClientAddrFrom returns the address of the client an endpoint call came
// from (ClientAddr, under the router's TrustedProxies), or "" outside a
// router's call.
func ClientAddrFrom(ctx context.Context) string {
	c := callFrom(ctx)
	if c == nil {
		return ""
	}
	return ClientAddr(c.r, c.rt.trusted)
}

// LoggerFrom returns the logger of the router an endpoint call came through,
// for encoders that write errors themselves; a nop logger outside one.
func LoggerFrom(ctx context.Context) log.Logger {
	c := callFrom(ctx)
	if c == nil {
		return log.NewNopLogger()
	}
	return c.rt.logger
}

// Handle serves pattern ("POST /api/v1/users") with e, decoding requests with
// dec and encoding responses as JSON.
func (rt *Router) Handle(pattern string, e endpoint.Endpoint, dec httptransport.DecodeRequestFunc, opts ...RouteOption) {
	cfg := route{status: http.StatusOK, maxBody: DefaultMaxBody}
	for _, o := range opts {
		o(&cfg)
	}
	enc := cfg.encode
	if enc == nil {
		enc = EncodeJSON(cfg.status)
	}
	h := httptransport.NewServer(e, dec, enc,
		httptransport.ServerErrorEncoder(ErrorEncoder(rt.logger)),
		httptransport.ServerBefore(func(ctx context.Context, r *http.Request) context.Context {
			return &callCtx{Context: ctx, r: r, rt: rt}
		}),
	)
	rt.HandleHTTP(pattern, h, opts...)
}

// HandleHTTP serves pattern with a plain handler, under the same
// authentication and body limit as Handle; for routes that stream.
func (rt *Router) HandleHTTP(pattern string, h http.Handler, opts ...RouteOption) {
	cfg := route{maxBody: DefaultMaxBody}
	for _, o := range opts {
		o(&cfg)
	}
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic(fmt.Sprintf("route %q: want \"METHOD /path\"", pattern))
	}
	if cfg.maxBody > 0 {
		h = limitBody(cfg.maxBody, h)
	}
	if !cfg.public {
		h = Authenticate(rt.logger, rt.authn, h)
	}
	rt.routes.Handle(pattern, h)
	if _, seen := rt.allowed[path]; !seen {
		rt.paths.HandleFunc(path, rt.methodNotAllowed(path))
	}
	rt.allowed[path] = append(rt.allowed[path], method)
}

// ServeHTTP dispatches to the route, or answers 405 or 404 as JSON.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.routes.Handler(r); pattern != "" {
		// ServeMux.Handler only finds the route; ServeHTTP is what sets
		// r.Pattern and the wildcards that handlers read with PathValue.
		rt.routes.ServeHTTP(w, r)
		return
	}
	if h, pattern := rt.paths.Handler(r); pattern != "" {
		h.ServeHTTP(w, r)
		return
	}
	WriteError(rt.logger, w, fmt.Errorf("%w: no route for %s %s", apierr.ErrNotFound, r.Method, r.URL.Path))
}

func (rt *Router) methodNotAllowed(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		methods := slices.Clone(rt.allowed[path])
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		WriteError(rt.logger, w, fmt.Errorf("%w: %s is not allowed here, use %s", apierr.ErrMethodNotAllowed, r.Method, strings.Join(methods, ", ")))
	}
}

// limitBody answers 413 to a request whose body is declared longer than
// n, and cuts one of unknown length (chunked) at n. A body of a declared
// length within n needs no reader of its own: net/http's server never
// reads past the declared length (HTTP/1.1 reads exactly Content-Length
// bytes, HTTP/2 fails a stream that sends more), which spares every
// ordinary request an http.MaxBytesReader.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ContentLength > n:
			WriteError(log.NewNopLogger(), w, fmt.Errorf("%w: request body of %d bytes is over the limit of %d", apierr.ErrTooLarge, r.ContentLength, n))
			return
		case r.ContentLength < 0:
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		next.ServeHTTP(w, r)
	})
}
