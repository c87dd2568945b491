package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// rawDo writes req, a request as bytes, on a new connection to the proxy
// at url and reads one answer.
func rawDo(t *testing.T, url, req string) result {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestMalformedLogsNoToken sends requests fasthttp cannot read, one with
// no HTTP version in its request line, carrying a bearer token: each is
// 400 invalid_argument, and nothing of them, the token least of all,
// reaches the log, where net/http logs nothing either.
func TestMalformedLogsNoToken(t *testing.T) {
	const secret = "eyJ-secret-token-never-logged"
	var logs syncBuffer
	logger := log.NewLogfmtLogger(&logs)
	keys := newKeys(t, testSecret)
	h := proxy.NewHandler(logger, proxy.NewBalancer(registry.NewMemory()), keys, prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewFastServer(logger, h, proxy.FastOptions{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var stop sync.Once
	shutdown := func() { stop.Do(func() { srv.Shutdown(time.Second); <-done }) }
	t.Cleanup(shutdown)
	url := "http://" + ln.Addr().String()
	for _, req := range []string{
		"GET /api/v1/files/a.txt\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
		"GET /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nBad Header Line\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
	} {
		res := rawDo(t, url, req)
		wantError(t, res, http.StatusBadRequest, "invalid_argument")
	}
	// fasthttp logs once it is done with a connection: all are, after
	// the stop.
	shutdown()
	if got := logs.String(); strings.Contains(got, secret) || strings.Contains(got, "fasthttp") {
		t.Errorf("the log has the request or fasthttp's line:\n%s", got)
	}
}
