package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// TestAccessLine checks the proxy's access line on a read, an upload and
// a refusal: one line each, with the same keys on every data plane.
func TestAccessLine(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		var logs servicetest.Logs
		keys := newKeys(t, testSecret)
		reg := registry.NewMemory()
		in := backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"})
		if err := reg.Register(in); err != nil {
			t.Fatal(err)
		}
		h := proxy.NewHandler(log.NewLogfmtLogger(&logs), proxy.NewBalancer(reg), keys, prometheus.NewRegistry())
		f := &fixture{reg: reg, keys: keys, url: serveProxy(t, plane, h, 0), client: &http.Client{Transport: &http.Transport{}}}
		t.Cleanup(f.client.CloseIdleConnections)
		tok := bearer(token(t, keys, time.Hour))
		tests := []struct {
			method string
			hdr    http.Header
			want   []string
		}{
			{http.MethodGet, tok, []string{"method=GET", "status=200", "upstream=" + in.Addr}},
			{http.MethodPut, tok, []string{"method=PUT", "status=200", "upstream=" + in.Addr}},
			{http.MethodGet, nil, []string{"method=GET", "status=401", "upstream="}},
		}
		for i, tt := range tests {
			id := "req-" + strconv.Itoa(i)
			hdr := http.Header{"X-Request-Id": {id}}
			for k, vs := range tt.hdr {
				hdr[k] = vs
			}
			var body io.Reader
			if tt.method == http.MethodPut {
				body = strings.NewReader("data")
			}
			// bytes is what the client got: the echo's name, or the
			// error's body.
			res := f.do(t, tt.method, "/api/v1/files/a.txt", body, hdr)
			want := append([]string{"msg=request", "path=/api/v1/files/a.txt", "upstream_service=storage", "bytes=" + strconv.Itoa(len(res.body))}, tt.want...)
			eventually(t, func() error {
				for _, line := range strings.Split(logs.String(), "\n") {
					if !strings.Contains(line, "request_id="+id) {
						continue
					}
					// Whole fields, so that bytes=1 is not bytes=114.
					fields := strings.Fields(line)
					for _, k := range want {
						if !slices.Contains(fields, k) {
							t.Fatalf("access line %q lacks %q", line, k)
						}
					}
					for _, k := range []string{"took=", "remote=127.0.0.1:"} {
						if !slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, k) }) {
							t.Fatalf("access line %q lacks %q", line, k)
						}
					}
					return nil
				}
				return errorString("no access line with request_id=" + id + " in:\n" + logs.String())
			})
		}
	})
}

type errorString string

func (e errorString) Error() string { return string(e) }
