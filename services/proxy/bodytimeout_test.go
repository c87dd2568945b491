package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// bodyBound is the proxy's body timeout in these tests.
const bodyBound = 300 * time.Millisecond

// timedProxy serves the proxy on a listener with the body timeout
// bodyBound, in front of a users and a storage backend that read every
// body, and returns its address.
func timedProxy(t *testing.T, plane string) (addr, tok string) {
	t.Helper()
	keys := newKeys(t, testSecret)
	reg := registry.NewMemory()
	for _, in := range []registry.Instance{
		backend(t, "users", "n1", usersRoutes, &echo{name: "users"}),
		backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"}),
	} {
		if err := reg.Register(in); err != nil {
			t.Fatal(err)
		}
	}
	h := proxy.NewHandler(log.NewNopLogger(), proxy.NewBalancer(reg), keys, prometheus.NewRegistry())
	url := serveProxy(t, plane, h, bodyBound)
	return strings.TrimPrefix(url, "http://"), token(t, keys, time.Hour)
}

// slowRequest sends a request's headers announcing length bytes of body,
// then the body one byte per drip until it is sent or answered, and
// returns the answer and when it came.
func slowRequest(t *testing.T, addr, method, path, tok string, length int, drip time.Duration) (*http.Response, []byte, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := ""
	if tok != "" {
		auth = "Authorization: Bearer " + tok + "\r\n"
	}
	begin := time.Now()
	answered := make(chan struct{})
	go func() {
		_, _ = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\n%sContent-Length: %d\r\n\r\n", method, path, auth, length)
		tick := time.NewTicker(drip)
		defer tick.Stop()
		for range length {
			select {
			case <-answered:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	close(answered)
	if err != nil {
		t.Fatalf("%s %s: no answer after %s: %v", method, path, time.Since(begin), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body, time.Since(begin)
}

func codeOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("answer %q is not the error shape: %v", body, err)
	}
	return e.Error.Code
}

// A forwarded body must arrive within the proxy's body timeout unless the
// caller's token was verified: a slow anonymous login is cut with 408 at
// the bound, while an authenticated upload may outlast it.
func TestProxyBodyTimeout(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		addr, tok := timedProxy(t, plane)

		t.Run("slow login is 408 at the bound", func(t *testing.T) {
			resp, body, took := slowRequest(t, addr, http.MethodPost, "/api/v1/tokens", "", 1000, 20*time.Millisecond)
			if resp.StatusCode != http.StatusRequestTimeout || codeOf(t, body) != "request_timeout" {
				t.Errorf("got %d %s, want 408 request_timeout", resp.StatusCode, body)
			}
			// The proxy starts its clock as it reads the headers, a little
			// before the client starts its own.
			if took < bodyBound*9/10 || took > bodyBound+time.Second {
				t.Errorf("answered after %s, want at the bound of %s", took, bodyBound)
			}
		})
		t.Run("slow upload without a token is 401 at once", func(t *testing.T) {
			resp, body, took := slowRequest(t, addr, http.MethodPut, "/api/v1/files/x", "", 1000, 20*time.Millisecond)
			if resp.StatusCode != http.StatusUnauthorized || codeOf(t, body) != "unauthenticated" {
				t.Errorf("got %d %s, want 401 unauthenticated", resp.StatusCode, body)
			}
			if took > bodyBound {
				t.Errorf("answered after %s, want before the body timeout", took)
			}
		})
		t.Run("slow authenticated upload outlasts the bound", func(t *testing.T) {
			// 20 bytes 40ms apart: 800ms in all, never idle for long.
			resp, body, took := slowRequest(t, addr, http.MethodPut, "/api/v1/files/x", tok, 20, 40*time.Millisecond)
			if resp.StatusCode != http.StatusOK || string(body) != "storage" {
				t.Errorf("got %d %q after %s, want 200 from storage", resp.StatusCode, body, took)
			}
			if took < 2*bodyBound {
				t.Errorf("upload took %s, want it to outlast the body timeout", took)
			}
		})
	})
}
