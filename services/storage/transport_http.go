package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// route is the path the service owns; file paths begin after prefix.
const (
	route       = "/api/v1/files"
	prefix      = route + "/"
	filePattern = prefix + "{path...}"
)

// uploadIdle is how long an upload may go without a byte arriving. It
// replaces the server's read timeout, which bounds a whole request and
// would cut a large upload short.
const uploadIdle = 2 * time.Minute

// The routes of the storage API, each declared once. A path ending in "/"
// names a directory: GET lists it. Any other path names a file, and GET of
// a path that is a directory answers 404 not_found with a hint to add the
// slash, so that the shape of an answer follows from the URL alone. GET is
// therefore one route with two faces, listDir for a directory (JSON) and
// getFile for a file (its bytes), which the server's decoder tells apart.
// Uploads and downloads stream: the server decodes and encodes their
// bodies itself, and the client builds their requests from the same
// routes (Client.Upload, Client.Download).
var putFile = transport.Put[PutRequest, PutResult](filePattern).Stream().
	Param("path", func(r *PutRequest) *string { return &r.Path }).
	Decode(decodePut).Encode(encodePut)

var listDir = transport.Get[ListRequest, Listing](filePattern).
	Param("path", func(r *ListRequest) *string { return &r.Path }).
	Decode(decodeGet).Encode(encodeGet)

var getFile = transport.Get[GetRequest, Download](filePattern).Stream().
	Param("path", func(r *GetRequest) *string { return &r.Path })

var deleteFile = transport.Delete[DeleteRequest, endpoint.Empty](filePattern).
	Param("path", func(r *DeleteRequest) *string { return &r.Path }).
	Status(http.StatusNoContent)

// API is the storage service's HTTP API: the server serves e through it
// (NewHTTPHandler), a client fills e from it (NewClient), and the
// descriptor derives from it the prefix the service owns. Every route
// wants a bearer token; the token's user is the owner of every path.
func API(e *Endpoints) transport.API {
	return transport.API{
		transport.Bind(&e.Put, putFile),
		transport.Bind(&e.List, listDir),
		transport.Bind(&e.Delete, deleteFile),
	}
}

// NewHTTPHandler serves the endpoints on the routes of API.
func NewHTTPHandler(e Endpoints, logger log.Logger, keys *auth.Keys) http.Handler {
	authn := transport.JWT(keys)
	r := transport.NewRouter(logger, authn)
	// GET serves directories and files on one route; each request goes
	// through its own wrapped endpoint, so logs and metrics keep them
	// apart.
	e.List = getOrList(e)
	API(&e).Serve(r)
	return &guard{next: r, authn: authn, logger: logger}
}

func decodePut(_ context.Context, r *http.Request) (any, error) {
	return PutRequest{
		Path:        r.PathValue("path"),
		Body:        r.Body,
		Size:        r.ContentLength,
		IfMatch:     strings.Join(r.Header.Values("If-Match"), ","),
		IfNoneMatch: strings.Join(r.Header.Values("If-None-Match"), ","),
	}, nil
}

func encodePut(ctx context.Context, w http.ResponseWriter, response any) error {
	res, ok := response.(PutResult)
	if !ok {
		return fmt.Errorf("%w: put answered %T", apierr.ErrInternal, response)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		w.Header().Set("Location", prefix+escapePath(res.File.Path))
	}
	w.Header().Set("ETag", res.File.ETag)
	return transport.EncodeJSON(status)(ctx, w, res.File)
}

func decodeGet(_ context.Context, r *http.Request) (any, error) {
	p := r.PathValue("path")
	if p == "" || strings.HasSuffix(p, "/") {
		return ListRequest{Path: p}, nil
	}
	return GetRequest{Path: p}, nil
}

// getOrList is the one endpoint behind GET: the decoder chose by the path
// whether the request is a listing or a download, and each goes through its
// own wrapped endpoint, so logs and metrics keep them apart.
func getOrList(e Endpoints) kitendpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		if _, ok := request.(ListRequest); ok {
			return e.List(ctx, request)
		}
		return e.Get(ctx, request)
	}
}

// encodeGet writes a listing as JSON and a download with
// http.ServeContent, which answers Range, If-None-Match, If-Modified-Since
// and HEAD; it closes the file in every case.
func encodeGet(ctx context.Context, w http.ResponseWriter, response any) error {
	d, ok := response.(Download)
	if !ok {
		return transport.EncodeJSON(http.StatusOK)(ctx, w, response)
	}
	defer d.Content.Close()
	r, ok := transport.RequestFrom(ctx)
	if !ok {
		return fmt.Errorf("%w: download without its request", apierr.ErrInternal)
	}
	h := w.Header()
	h.Set("ETag", d.File.ETag)
	// User content is never typed by its name: served as a page on the
	// API's origin, an uploaded .html could run script there.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(&wireErrors{ResponseWriter: w, logger: transport.LoggerFrom(ctx)}, r, "", d.File.MTime, d.Content)
	return nil
}

// wireErrors gives the errors http.ServeContent writes as plain text (412,
// 416) the JSON shape of every other error. 416 keeps its status, which
// resuming clients rely on, with an invalid_argument body.
type wireErrors struct {
	http.ResponseWriter
	logger log.Logger
	failed bool
}

func (w *wireErrors) WriteHeader(status int) {
	if status < 400 {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.failed = true
	var err error
	switch status {
	case http.StatusPreconditionFailed:
		err = fmt.Errorf("%w: If-Match or If-Unmodified-Since", ErrPrecondition)
	case http.StatusRequestedRangeNotSatisfiable:
		// ServeContent names the file's size for a range past its end,
		// and nothing for a Range header it cannot read.
		detail := w.Header().Get("Content-Range")
		if detail == "" {
			detail = "the Range header is not a byte range this server reads (bytes=first-last, bytes=first-, bytes=-suffix)"
		}
		err = fmt.Errorf("%w: %s", ErrBadRange, detail)
	default:
		err = fmt.Errorf("serve content: status %d", status)
	}
	transport.WriteError(w.logger, statusWriter{w.ResponseWriter, status}, err)
}

// Write drops the plain-text body of an error already written as JSON.
func (w *wireErrors) Write(p []byte) (int, error) {
	if w.failed {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps the response's own ReadFrom, which sends a file with
// sendfile rather than through a buffer.
func (w *wireErrors) ReadFrom(r io.Reader) (int64, error) {
	if w.failed {
		return io.Copy(io.Discard, r)
	}
	return io.Copy(w.ResponseWriter, r)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *wireErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusWriter writes its own status whatever it is asked to.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w statusWriter) WriteHeader(int) { w.ResponseWriter.WriteHeader(w.status) }

// guard stands in front of the router for what a route cannot say.
type guard struct {
	next   http.Handler
	authn  transport.Authenticator
	logger log.Logger
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == route {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// http.ServeMux would redirect to route+"/", where a PUT or
			// a DELETE would name the root, which is no file.
			w.Header().Set("Allow", "GET, HEAD")
			transport.WriteError(g.logger, w, fmt.Errorf("%w: %s %s, use GET", apierr.ErrMethodNotAllowed, r.Method, route))
			return
		}
		// GET of the route itself lists the root, as GET of prefix does,
		// rather than redirect there.
		r.URL.Path, r.URL.RawPath = prefix, ""
	}
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		g.next.ServeHTTP(w, r)
		return
	}
	if !isClean(r.URL.EscapedPath()) {
		// http.ServeMux answers a path with "//", "." or ".." segments
		// by redirecting to its cleaned form, which a client following
		// the redirect would take for the file it named. Paths are
		// rejected, never cleaned; authenticated first, like any route.
		if _, err := g.authn(r); err != nil {
			transport.WriteError(g.logger, w, err)
			return
		}
		err := checkPath(rest)
		if err == nil {
			err = fmt.Errorf("%w: %s is not in canonical form", ErrInvalidPath, quote(rest))
		}
		transport.WriteError(g.logger, w, err)
		return
	}
	if r.Method == http.MethodPut && r.Body != nil && r.Body != http.NoBody {
		r.Body = &uploadBody{ReadCloser: r.Body, rc: http.NewResponseController(w)}
	}
	g.next.ServeHTTP(w, r)
}

// isClean reports whether http.ServeMux would take the URL path p as it
// is; it cleans like path.Clean but keeps a trailing slash.
func isClean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// uploadBody replaces the server's read deadline, which bounds a whole
// request, with an idle deadline that moves with every read: an upload may
// take as long as it needs while bytes keep arriving. It takes effect at the
// first read, which comes after the token was verified, so an
// unauthenticated sender never gets more than the server's own timeout.
type uploadBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	deadline time.Time
}

func (b *uploadBody) Read(p []byte) (int, error) {
	// Moving the deadline at most once per half period keeps it off the
	// path of every read.
	if now := time.Now(); b.deadline.Sub(now) < uploadIdle/2 {
		b.deadline = now.Add(uploadIdle)
		_ = b.rc.SetReadDeadline(b.deadline)
	}
	return b.ReadCloser.Read(p)
}
