package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestReadAnswer(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		raw      string
		want     framing
		wantHdr  http.Header
		wantBody string
		wantErr  error
	}{
		{
			name: "length", method: "GET",
			raw:      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nEtag: \"x\"\r\nX-Request-Id: theirs\r\n\r\nhello",
			want:     framing{status: 200, length: 5},
			wantHdr:  http.Header{"Content-Length": {"5"}, "Etag": {`"x"`}},
			wantBody: "hello",
		},
		{
			name: "chunked with a trailer", method: "GET",
			raw:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 42\r\n\r\n",
			want:     framing{status: 200, length: -1, chunked: true},
			wantHdr:  http.Header{},
			wantBody: "abcde",
		},
		{
			name: "until close", method: "GET",
			raw:      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nrest of it",
			want:     framing{status: 200, length: -1, close: true},
			wantHdr:  http.Header{"Content-Type": {"text/plain"}},
			wantBody: "rest of it",
		},
		{
			name: "HEAD keeps the length, reads no body", method: "HEAD",
			raw:     "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n",
			want:    framing{status: 200, length: 0},
			wantHdr: http.Header{"Content-Length": {"1024"}},
		},
		{
			name: "304 has no body", method: "GET",
			raw:     "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
			want:    framing{status: 304, length: 0},
			wantHdr: http.Header{"Etag": {`"x"`}},
		},
		{
			name: "interim answer dropped", method: "GET",
			raw:      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			want:     framing{status: 200, length: 2},
			wantHdr:  http.Header{"Content-Length": {"2"}},
			wantBody: "ok",
		},
		{
			name: "connection close and named hop headers", method: "GET",
			raw:      "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
			want:     framing{status: 200, length: 0, close: true},
			wantHdr:  http.Header{"Content-Length": {"0"}},
			wantBody: "",
		},
		{
			name: "HTTP/1.0 closes", method: "GET",
			raw:     "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
			want:    framing{status: 200, length: 0, close: true},
			wantHdr: http.Header{"Content-Length": {"0"}},
		},
		{
			name: "repeated headers kept", method: "GET",
			raw:     "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
			want:    framing{status: 200, length: 0},
			wantHdr: http.Header{"Content-Length": {"0"}, "Set-Cookie": {"a=1", "b=2"}},
		},
		{name: "nothing at all", method: "GET", raw: "", wantErr: io.EOF},
		{name: "cut in the head", method: "GET", raw: "HTTP/1.1 200 OK\r\nContent-Le", wantErr: io.ErrUnexpectedEOF},
		{name: "differing lengths", method: "GET", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", wantErr: errBadAnswer},
		{name: "bad length", method: "GET", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: errBadAnswer},
		{name: "folded line", method: "GET", raw: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n", wantErr: errBadAnswer},
		{name: "not HTTP", method: "GET", raw: "SSH-2.0-OpenSSH\r\n\r\n", wantErr: errBadAnswer},
		{name: "bad name", method: "GET", raw: "HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n", wantErr: errBadAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uc := &upConn{br: bufio.NewReaderSize(strings.NewReader(tc.raw), 64)}
			hdr := http.Header{}
			got, err := readAnswer(uc.br, tc.method, hdr)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("framing = %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(hdr, tc.wantHdr) {
				t.Errorf("headers = %v, want %v", hdr, tc.wantHdr)
			}
			body, err := io.ReadAll(uc.body(got))
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if string(body) != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if got.chunked && uc.chunks.trailers.Get("X-Sum") != "42" {
				t.Errorf("trailers = %v, want X-Sum: 42", uc.chunks.trailers)
			}
		})
	}
}

// TestReadAnswerLongLine checks a header longer than the read buffer.
func TestReadAnswerLongLine(t *testing.T) {
	long := strings.Repeat("v", 10_000)
	raw := "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nContent-Length: 0\r\n\r\n"
	hdr := http.Header{}
	if _, err := readAnswer(bufio.NewReaderSize(strings.NewReader(raw), 64), "GET", hdr); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("X-Long") != long {
		t.Errorf("X-Long has %d bytes, want %d", len(hdr.Get("X-Long")), len(long))
	}
}
