package proxy

import (
	"net/http"

	"github.com/go-kit/log"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/transport"
)

// writeFastError writes err on rc in the wire shape, through
// transport.WriteError, so both planes answer every refusal alike; it
// returns the status.
func writeFastError(logger log.Logger, rc *fasthttp.RequestCtx, err error) int {
	w := &fastErrorWriter{rc: rc, hdr: http.Header{}, status: http.StatusOK}
	transport.WriteError(logger, w, err)
	return w.status
}

// fastErrorWriter is the http.ResponseWriter WriteError writes to: small
// answers, whole in rc's body.
type fastErrorWriter struct {
	rc     *fasthttp.RequestCtx
	hdr    http.Header
	status int
}

func (w *fastErrorWriter) Header() http.Header { return w.hdr }

func (w *fastErrorWriter) WriteHeader(code int) {
	w.status = code
	for k, vs := range w.hdr {
		w.rc.Response.Header.Del(k)
		for _, v := range vs {
			w.rc.Response.Header.Add(k, v)
		}
	}
	w.rc.SetStatusCode(code)
}

func (w *fastErrorWriter) Write(p []byte) (int, error) {
	w.rc.Response.AppendBody(p)
	return len(p), nil
}

// headers and putHeaders pool the maps the direct path reads answers'
// heads into (readHead).
func (s *FastServer) headers() http.Header {
	if h, ok := s.heads.Get().(http.Header); ok {
		return h
	}
	return http.Header{}
}

func (s *FastServer) putHeaders(h http.Header) {
	clear(h)
	s.heads.Put(h)
}
