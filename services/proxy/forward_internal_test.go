package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// readFromWriter is a response writer with its own ReadFrom, as the
// server's connection has (sendfile).
type readFromWriter struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom++
	return io.Copy(w.ResponseRecorder.Body, r)
}

// TestRecorderKeepsReadFrom checks that a body copied into the recorder
// reaches the ReadFrom of the writer below, and is counted, and that a
// writer without one still gets the body.
func TestRecorderKeepsReadFrom(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	below := &readFromWriter{ResponseRecorder: httptest.NewRecorder()}
	rec := &recorder{ResponseWriter: below, status: http.StatusOK}
	// A limited reader, as http.ServeContent copies: it has no WriteTo,
	// so io.Copy turns to the writer's ReadFrom.
	if n, err := io.Copy(rec, io.LimitReader(strings.NewReader(body), int64(len(body)))); err != nil || n != int64(len(body)) {
		t.Fatalf("io.Copy = %d, %v; want %d, nil", n, err, len(body))
	}
	if below.readFrom != 1 {
		t.Errorf("the writer's ReadFrom ran %d times, want 1", below.readFrom)
	}
	if got := rec.bytes.Load(); got != int64(len(body)) {
		t.Errorf("recorder counted %d bytes, want %d", got, len(body))
	}

	plain := httptest.NewRecorder()
	rec = &recorder{ResponseWriter: plain, status: http.StatusOK}
	if _, err := rec.ReadFrom(strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Body.Bytes(), []byte(body)) || rec.bytes.Load() != int64(len(body)) {
		t.Errorf("without a ReadFrom below: got %d bytes, counted %d", plain.Body.Len(), rec.bytes.Load())
	}
}

// TestWriteHead checks the request head the direct path sends: hop-by-hop
// headers and those the Connection header names are dropped, the client's
// X-Forwarded-* replaced, everything else kept.
func TestWriteHead(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://proxy.example/api/v1/files/a%20b?x=1", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("Authorization", "Bearer t")
	r.Header.Set("Connection", "keep-alive, X-Secret-Hop")
	r.Header.Set("X-Secret-Hop", "no")
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	r.Header.Set("X-Request-Id", "abc")
	var out bytes.Buffer
	bw := bufioWriter(&out)
	writeHead(bw, r, "127.0.0.1:9150")
	_ = bw.Flush()
	got := out.String()
	for _, want := range []string{
		"GET /api/v1/files/a%20b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9150\r\n",
		"Authorization: Bearer t\r\n",
		"X-Request-Id: abc\r\n",
		"X-Forwarded-For: 192.0.2.7\r\n",
		"X-Forwarded-Host: proxy.example\r\n",
		"X-Forwarded-Proto: http\r\n\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("head lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"Connection", "X-Secret-Hop", "Keep-Alive", "10.0.0.1"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("head carries %q:\n%s", unwanted, got)
		}
	}
}

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriter(w) }

// TestCutSurvivesLaterDeadlines checks that once the cutter fired, no
// deadline an exchange sets afterwards (a wait's, or none for a streaming
// body) lets a read on the instance's connection block again.
func TestCutSurvivesLaterDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		next time.Time
	}{
		{name: "no deadline, a streaming body", next: time.Time{}},
		{name: "the response timeout", next: time.Now().Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxySide, instanceSide := net.Pipe()
			defer proxySide.Close()
			defer instanceSide.Close()
			uc := &upConn{Conn: proxySide}
			var c cutter
			c.watch(uc)
			c.fire() // the client went away
			c.deadline(uc, tc.next)
			// The instance stays silent: only the cut's deadline ends
			// this read.
			done := make(chan error, 1)
			go func() {
				_, err := proxySide.Read(make([]byte, 1))
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read after the cut: %v; want a deadline error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a read after the cut blocked: the later deadline undid it")
			}
		})
	}
}
