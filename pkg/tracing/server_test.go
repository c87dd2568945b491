package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ocis-runtime/ocis/pkg/tracing"
)

// TestServeMatchesHandler serves one request through Handler (otelhttp)
// and describes the same request to Serve, as the proxy's fasthttp plane
// does: both server spans have the same attributes, keys and values, but
// the client's port, which differs between two connections.
func TestServeMatchesHandler(t *testing.T) {
	tr, exp := memory(t, 1)
	s := tr.For("proxy")
	srv := httptest.NewServer(s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "hello")
	})))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/v1/files/a%20b.txt", strings.NewReader("data"))
	req.Header.Set("User-Agent", "test-agent")
	req.Header.Set("X-Forwarded-For", "10.0.0.1, 10.0.0.2")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	_, sv := s.Serve(context.Background(), http.MethodPut, http.Header{})
	if !sv.Recording() {
		t.Fatal("the span does not record at ratio 1")
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	sv.Describe(tracing.ServerRequest{
		Host: host, RemoteAddr: "127.0.0.1:1", Path: "/api/v1/files/a b.txt",
		UserAgent: "test-agent", XForwardedFor: "10.0.0.1, 10.0.0.2", Proto: "HTTP/1.1",
	})
	sv.End(http.StatusOK, 4, 5)

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("spans %v, want two", names(spans))
	}
	want, got := attrs(spans[0]), attrs(spans[1])
	delete(want, "network.peer.port")
	delete(got, "network.peer.port")
	if !reflect.DeepEqual(got, want) {
		keys := func(m map[string]string) []string {
			var k []string
			for key := range m {
				k = append(k, key)
			}
			slices.Sort(k)
			return k
		}
		t.Errorf("Serve's span:\n%v\n%v\nwant otelhttp's:\n%v\n%v", keys(got), got, keys(want), want)
	}
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}
