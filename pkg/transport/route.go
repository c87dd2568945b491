package transport

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	ocisendpoint "github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Route is one HTTP route of a service, declared once with the types of its
// request and answer. The same value serves the endpoint (Router.Serve),
// builds the caller's endpoint (Route.Client) or request (Route.Request),
// and tells the registry which path prefix the service owns and whether the
// route needs a token (API.Prefixes, API.Public).
//
// A request travels as JSON in the body when the method carries one (POST,
// PUT, PATCH) and Req is not endpoint.Empty; path parameters travel in the
// path, bound to fields of Req with Param. A route is built with Get, Post,
// Put or Delete and refined with its methods, each of which returns a new
// value:
//
//	transport.Delete[DeleteUserRequest, endpoint.Empty]("/api/v1/users/{name}").
//		Param("name", func(r *DeleteUserRequest) *string { return &r.Username }).
//		Status(http.StatusNoContent)
type Route[Req, Resp any] struct {
	method, path string
	public       bool
	status       int
	maxBody      int64
	stream       bool
	params       []param[Req]
	queries      []query[Req]
	decode       httptransport.DecodeRequestFunc
	encode       httptransport.EncodeResponseFunc
}

// param binds the wildcard name of a route's path to a field of its request.
type param[Req any] struct {
	name  string
	rest  bool // {name...}: the rest of the path, slashes included
	field func(*Req) *string
}

// query binds a query parameter to its request: get reads it for the
// client's URL, set writes it on the server.
type query[Req any] struct {
	name string
	get  func(Req) string
	set  func(*Req, string) error
}

// NewRoute declares the route method path ("/api/v1/users/{name}"), which
// answers 200 with a JSON body, takes a token and reads at most
// DefaultMaxBody bytes.
func NewRoute[Req, Resp any](method, path string) Route[Req, Resp] {
	if !strings.HasPrefix(path, "/") {
		panic(fmt.Sprintf("route %s %q: want a path that begins with /", method, path))
	}
	return Route[Req, Resp]{method: method, path: path, status: http.StatusOK, maxBody: DefaultMaxBody}
}

// Get declares a GET route; it answers HEAD too.
func Get[Req, Resp any](path string) Route[Req, Resp] {
	return NewRoute[Req, Resp](http.MethodGet, path)
}

// Post declares a POST route.
func Post[Req, Resp any](path string) Route[Req, Resp] {
	return NewRoute[Req, Resp](http.MethodPost, path)
}

// Put declares a PUT route.
func Put[Req, Resp any](path string) Route[Req, Resp] {
	return NewRoute[Req, Resp](http.MethodPut, path)
}

// Delete declares a DELETE route.
func Delete[Req, Resp any](path string) Route[Req, Resp] {
	return NewRoute[Req, Resp](http.MethodDelete, path)
}

// Public lets requests through without a bearer token (login, for one); the
// proxy learns it from the registry and lets them through too.
func (r Route[Req, Resp]) Public() Route[Req, Resp] {
	r.public = true
	return r
}

// Status sets the status of a successful answer (default 200); 204 answers
// carry no body.
func (r Route[Req, Resp]) Status(code int) Route[Req, Resp] {
	r.status = code
	return r
}

// MaxBody sets the request body limit (default DefaultMaxBody); 0 means no
// limit.
func (r Route[Req, Resp]) MaxBody(n int64) Route[Req, Resp] {
	r.maxBody = n
	return r
}

// Stream declares that the route's request or answer body is bytes, not
// JSON: the server sets no body limit, and callers build the request
// themselves with Request, since only they know what to send or how to read
// the answer. A streamed route needs a Decode on the server.
func (r Route[Req, Resp]) Stream() Route[Req, Resp] {
	r.stream = true
	r.maxBody = 0
	return r
}

// Param binds the path wildcard {name} or {name...} to the field of the
// request that field returns: the server fills it from the path, the client
// puts it in the path, escaped. It panics when the path has no such
// wildcard, which is a mistake in the declaration.
func (r Route[Req, Resp]) Param(name string, field func(*Req) *string) Route[Req, Resp] {
	p := param[Req]{name: name, field: field}
	switch {
	case strings.Contains(r.path, "{"+name+"}"):
	case strings.Contains(r.path, "{"+name+"...}"):
		p.rest = true
	default:
		panic(fmt.Sprintf("route %s: no wildcard {%s} in the path", r.Pattern(), name))
	}
	r.params = append(slices.Clone(r.params), p)
	return r
}

// Query binds the query parameter name to the request: the server calls
// set with its value when the URL has a non-empty one (an error is 400
// invalid_argument, its own reason kept when it has one), and the client
// adds get's value to the URL when it is not empty. It is for GET routes
// whose request is a few options (a page size, a cursor), where a body
// has no place.
func (r Route[Req, Resp]) Query(name string, get func(Req) string, set func(*Req, string) error) Route[Req, Resp] {
	r.queries = append(slices.Clone(r.queries), query[Req]{name: name, get: get, set: set})
	return r
}

// Decode replaces the server's decoding of the request (JSON body and path
// parameters) with dec, for routes whose request is more than that: a
// streamed body, headers, the client's address.
func (r Route[Req, Resp]) Decode(dec httptransport.DecodeRequestFunc) Route[Req, Resp] {
	r.decode = dec
	return r
}

// Encode replaces the server's JSON encoding of the answer with enc, for
// answers that are not JSON (a file's content). The encoder can reach the
// request with RequestFrom.
func (r Route[Req, Resp]) Encode(enc httptransport.EncodeResponseFunc) Route[Req, Resp] {
	r.encode = enc
	return r
}

// Method is the route's HTTP method.
func (r Route[Req, Resp]) Method() string { return r.method }

// Path is the route's path pattern.
func (r Route[Req, Resp]) Path() string { return r.path }

// Pattern is the route as http.ServeMux writes it: "POST /api/v1/tokens".
func (r Route[Req, Resp]) Pattern() string { return r.method + " " + r.path }

// IsPublic reports whether the route takes requests without a token.
func (r Route[Req, Resp]) IsPublic() bool { return r.public }

// hasBody reports whether requests carry Req as JSON in their body.
func (r Route[Req, Resp]) hasBody() bool {
	switch r.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return false
	}
	var req Req
	_, empty := any(req).(ocisendpoint.Empty)
	return !empty && !r.stream
}

// Serve serves the route on rt with e.
func (r Route[Req, Resp]) Serve(rt *Router, e endpoint.Endpoint) {
	dec := r.decode
	if dec == nil {
		if r.stream {
			panic(fmt.Sprintf("route %s: a streamed route needs a Decode", r.Pattern()))
		}
		dec = r.decodeRequest
	}
	opts := []RouteOption{Status(r.status), MaxBody(r.maxBody)}
	if r.public {
		opts = append(opts, Public())
	}
	if r.encode != nil {
		opts = append(opts, Encode(r.encode))
	}
	rt.Handle(r.Pattern(), e, dec, opts...)
}

// decodeRequest is the server's decoder of JSON routes: the body, when the
// route has one, then the path and query parameters.
func (r Route[Req, Resp]) decodeRequest(ctx context.Context, hr *http.Request) (any, error) {
	var req Req
	if r.hasBody() {
		if err := decodeStrict(hr.Body, &req); err != nil {
			return nil, err
		}
	}
	for _, p := range r.params {
		*p.field(&req) = hr.PathValue(p.name)
	}
	if len(r.queries) > 0 {
		// A query that does not parse (a bad escape, a `;`) is refused:
		// URL.Query would drop the broken pair and serve the default in
		// its place, as if the client had not asked.
		values, err := url.ParseQuery(hr.URL.RawQuery)
		if err != nil {
			return nil, fmt.Errorf("%w: query: %v", apierr.ErrInvalidArgument, err)
		}
		for _, q := range r.queries {
			v := values.Get(q.name)
			if v == "" {
				continue
			}
			if err := q.set(&req, v); err != nil {
				if apierr.CodeOf(err) != apierr.CodeInvalidArgument {
					err = fmt.Errorf("%w: %s: %v", apierr.ErrInvalidArgument, q.name, err)
				}
				return nil, err
			}
		}
	}
	return req, nil
}

// URL returns where req goes on the server at base: the path with its
// parameters filled in, each segment escaped, and the query parameters
// that have a value.
func (r Route[Req, Resp]) URL(base *url.URL, req Req) (*url.URL, error) {
	path := r.path
	for _, p := range r.params {
		v := *p.field(&req)
		wildcard := "{" + p.name + "}"
		if p.rest {
			wildcard = "{" + p.name + "...}"
			path = strings.Replace(path, wildcard, escapeSegments(v), 1)
			continue
		}
		if v == "" {
			return nil, fmt.Errorf("%w: %s: empty %s", apierr.ErrInvalidArgument, r.Pattern(), p.name)
		}
		path = strings.Replace(path, wildcard, escapeSegment(v), 1)
	}
	if strings.Contains(path, "{") {
		panic(fmt.Sprintf("route %s: a path wildcard has no Param", r.Pattern()))
	}
	u, err := base.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("%w: build url: %v", apierr.ErrInvalidArgument, err)
	}
	if len(r.queries) > 0 {
		values := url.Values{}
		for _, q := range r.queries {
			if v := q.get(req); v != "" {
				values.Set(q.name, v)
			}
		}
		u.RawQuery = values.Encode()
	}
	return u, nil
}

// Request builds the caller's request of the route for req, carrying the
// token that WithBearer put in ctx, for callers that stream the body or
// the answer themselves.
func (r Route[Req, Resp]) Request(ctx context.Context, base *url.URL, req Req) (*http.Request, error) {
	u, err := r.URL(base, req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: build request: %v", apierr.ErrInvalidArgument, err)
	}
	if token, ok := BearerFrom(ctx); ok {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	return hr, nil
}

// Client returns the caller's endpoint of the route: it sends a Req to the
// server at base through hc and decodes a Resp, or the wire error. A
// peer that was not reached is apierr.ErrUnavailable.
func (r Route[Req, Resp]) Client(hc *http.Client, base *url.URL) endpoint.Endpoint {
	return clientEndpoint[Req, Resp](hc, base, r.method, r.hasBody(), func(req Req) (*url.URL, error) {
		return r.URL(base, req)
	})
}

// escapeSegment escapes one path segment. "." and ".." are escaped too, so
// that resolving the URL on the way leaves them for the server to refuse
// rather than resolving them away.
func escapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// escapeSegments escapes each segment of a path that may hold slashes.
func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = escapeSegment(s)
	}
	return strings.Join(segs, "/")
}

// Binding ties a declared route to a service's endpoint: the server serves
// the endpoint there, and a client puts its own endpoint for the route in
// the same place. Build one with Bind.
type Binding struct {
	method, path string
	public       bool
	serve        func(rt *Router)
	dial         func(hc *http.Client, base *url.URL)
}

// Bind ties route to the endpoint at e, a field of a service's Endpoints.
// A streamed route is served but never dialled: its callers build their
// requests with Route.Request.
func Bind[Req, Resp any](e *endpoint.Endpoint, route Route[Req, Resp]) Binding {
	b := Binding{
		method: route.method,
		path:   route.path,
		public: route.public,
		serve:  func(rt *Router) { route.Serve(rt, *e) },
		dial:   func(*http.Client, *url.URL) {},
	}
	if !route.stream {
		b.dial = func(hc *http.Client, base *url.URL) { *e = route.Client(hc, base) }
	}
	return b
}

// API is a service's HTTP API, one Binding per endpoint. It is the one
// place a route is declared: the server serves it, the client dials it, and
// the service's descriptor derives from it the path prefixes it owns and
// its public routes.
type API []Binding

// Serve serves every route on rt with the endpoints bound to it.
func (a API) Serve(rt *Router) {
	for _, b := range a {
		b.serve(rt)
	}
}

// Dial sets every endpoint bound to a route to a client of the route at
// base, through hc.
func (a API) Dial(hc *http.Client, base *url.URL) {
	for _, b := range a {
		b.dial(hc, base)
	}
}

// Prefixes returns the path prefixes the API owns, the fewest that cover
// every route: each route's path up to its first wildcard, without a
// trailing slash, left out when a shorter one covers it. A request for a
// path under one of them belongs to the service, so the proxy forwards it
// there, even when no route of the service matches it.
func (a API) Prefixes() []string {
	var all []string
	for _, b := range a {
		p, _, _ := strings.Cut(b.path, "{")
		// A route at the root ("/{path...}") leaves "", which owns
		// every path.
		all = append(all, strings.TrimSuffix(p, "/"))
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var out []string
	for _, p := range all {
		covered := slices.ContainsFunc(out, func(q string) bool {
			return q == "" || strings.HasPrefix(p, q+"/")
		})
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// Public returns the patterns ("POST /api/v1/tokens") of the routes that
// take requests without a token.
func (a API) Public() []string {
	var out []string
	for _, b := range a {
		if b.public {
			out = append(out, b.method+" "+b.path)
		}
	}
	return out
}
