package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// slowRequest sends a request's headers announcing length bytes of body,
// then the body one byte per drip until sent or answered, and returns the
// answer read from the connection and when it came.
func slowRequest(t *testing.T, addr, method, path string, length int, drip time.Duration) (*http.Response, []byte, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begin := time.Now()
	answered := make(chan struct{})
	go func() {
		_, _ = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, path, length)
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
		t.Fatalf("no answer after %s: %v", time.Since(begin), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body, time.Since(begin)
}

// A JSON body still arriving at the body timeout is answered 408
// request_timeout at the bound; the same request sent at once is served.
func TestBodyTimeoutAnswers408(t *testing.T) {
	const bound = 300 * time.Millisecond
	r := transport.NewRouter(log.NewNopLogger(), nil)
	r.Handle("POST /echo", endpoint.Typed(func(_ context.Context, req map[string]any) (map[string]any, error) {
		return req, nil
	}), transport.DecodeJSON[map[string]any], transport.Public())
	s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", r, time.Second, transport.BodyTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runGroup(s)
	defer func() { stop(); waitFor(t, done, "server stop") }()

	resp, body, took := slowRequest(t, s.Addr(), http.MethodPost, "/echo", 1000, 20*time.Millisecond)
	var got struct {
		Error struct{ Code, Reason string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("answer %q is not JSON: %v", body, err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || got.Error.Code != "request_timeout" {
		t.Errorf("slow body: %d %s, want 408 request_timeout", resp.StatusCode, body)
	}
	// The server starts its clock as it reads the headers, a little before
	// the client starts its own.
	if took < bound*9/10 || took > bound+time.Second {
		t.Errorf("slow body answered after %s, want at the bound of %s", took, bound)
	}

	res := waitFor(t, post(s.Addr(), "/echo", `{"a":1}`), "a prompt request")
	if res.err != nil || res.status != http.StatusOK {
		t.Errorf("prompt request: %d %v", res.status, res.err)
	}
}

// IdleBody lets a body take longer than the body timeout while bytes keep
// arriving.
func TestIdleBodyOutlivesBodyTimeout(t *testing.T) {
	const bound = 200 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, transport.IdleBody(w, r.Body, bound))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	})
	s, err := transport.Listen(log.NewNopLogger(), "127.0.0.1:0", h, time.Second, transport.BodyTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runGroup(s)
	defer func() { stop(); waitFor(t, done, "server stop") }()

	// 20 bytes 40ms apart: 800ms in all, never idle for 200ms.
	resp, body, took := slowRequest(t, s.Addr(), http.MethodPut, "/upload", 20, 40*time.Millisecond)
	if resp.StatusCode != http.StatusOK || string(body) != "20" {
		t.Errorf("upload over %s: %d %q, want 200 and 20 bytes", took, resp.StatusCode, body)
	}
	if took < 4*bound {
		t.Errorf("upload took %s, want it to outlast the body timeout", took)
	}
}

func post(addr, path, body string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	return ch
}
