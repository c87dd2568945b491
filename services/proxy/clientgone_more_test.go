package proxy_test

import (
	"bufio"
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

// newFixtureBodyTimeout is newFixture with the listener's body timeout set.
func newFixtureBodyTimeout(t *testing.T, plane string, bodyTimeout time.Duration) *fixture {
	t.Helper()
	keys := newKeys(t, testSecret)
	reg := registry.NewMemory()
	metrics := prometheus.NewRegistry()
	url := serveProxy(t, plane, proxy.NewHandler(log.NewNopLogger(), proxy.NewBalancer(reg), keys, metrics), bodyTimeout)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	return &fixture{reg: reg, keys: keys, metrics: metrics, url: url, client: client}
}

// waitingInstance is an instance that, once it has the request, says so on
// entered and waits for the request to end (closing ended) or ten seconds.
func waitingInstance(entered, ended chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			close(ended)
		case <-time.After(10 * time.Second):
		}
	})
}

// TestClientGoneAfterBodyTimeout leaves a request whose instance keeps it
// waiting after the listener's body timeout has passed: the proxy must
// still notice the client leaving and cut the instance's request. (On
// fasthttp the read deadline set at the request's start stays in place
// during it, and a look at the connection through it failed at once.)
func TestClientGoneAfterBodyTimeout(t *testing.T) {
	const bodyTimeout = 200 * time.Millisecond
	eachPlane(t, func(t *testing.T, plane string) {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			t.Run(method, func(t *testing.T) {
				f := newFixtureBodyTimeout(t, plane, bodyTimeout)
				entered, ended := make(chan struct{}), make(chan struct{})
				f.register(t, backend(t, "storage", "n1", storageRoutes, waitingInstance(entered, ended)))
				conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "%s /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", method, token(t, f.keys, time.Hour))
				select {
				case <-entered:
				case <-time.After(5 * time.Second):
					t.Fatal("the request never reached the instance")
				}
				// What is tested is a real socket deadline passing:
				// nothing to poll for, so the wait is the point.
				time.Sleep(2 * bodyTimeout)
				conn.Close()
				select {
				case <-ended:
				case <-time.After(5 * time.Second):
					t.Fatal("the instance's request did not end after the client went away")
				}
			})
		}
	})
}

// TestClientResetMidAnswerCutsInstance resets the connection while a
// DELETE's answer streams back, and the instance then sends more: the
// proxy's write fails, and the instance's request must be cut at once,
// not when the instance next writes or finishes.
func TestClientResetMidAnswerCutsInstance(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		reset, ended := make(chan struct{}), make(chan struct{})
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			_, _ = io.WriteString(w, "first piece\n")
			_ = rc.Flush()
			<-reset
			_, _ = io.WriteString(w, "a piece the client never gets\n")
			_ = rc.Flush()
			select {
			case <-r.Context().Done():
				close(ended)
			case <-time.After(10 * time.Second):
			}
		})))
		conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "DELETE /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token(t, f.keys, time.Hour))
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			if strings.Contains(line, "first piece") {
				break
			}
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		close(reset)
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the instance's request did not end after the client reset")
		}
	})
}

// TestBrokenChunkIsNotSuccess sends an upload whose chunked framing
// breaks after its first chunk: the client is still there, so the upload
// is answered as failed (503 unavailable: the instance did not get the
// body), never as stored, and never dropped as if the client had left.
func TestBrokenChunkIsNotSuccess(t *testing.T) {
	eachPlane(t, func(t *testing.T, plane string) {
		f := newFixture(t, plane)
		f.register(t, backend(t, "storage", "n1", storageRoutes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			w.WriteHeader(http.StatusCreated)
		})))
		for range 5 {
			res := rawDo(t, f.url, "PUT /api/v1/files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token(t, f.keys, time.Hour)+
				"\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\nZZ\r\nxx\r\n0\r\n\r\n")
			wantError(t, res, http.StatusServiceUnavailable, "unavailable")
		}
	})
}
