package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strings"
)

// The direct path reads an instance's answer itself, straight into the
// client's response headers: http.ReadResponse builds a Response, a header
// map and a string per header, which the proxy would only copy again.
// Framing follows RFC 9112, section 6.3.

// errBadAnswer is an answer the proxy cannot pass on.
var errBadAnswer = errors.New("malformed answer from the instance")

// maxHeadBytes bounds an answer's status line and headers, as net/http's
// Transport does with its default MaxResponseHeaderBytes.
const maxHeadBytes = 1 << 20

// framing is how an answer's body is delimited, and whether the
// connection can carry another request after it.
type framing struct {
	status  int
	length  int64 // -1 when unknown (chunked, or until the connection closes)
	chunked bool
	close   bool // the connection ends with this answer
}

// commonHeaders are the canonical names of the headers the services send;
// looking a name up here costs no allocation, unlike building its string.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Cache-Control", "Connection", "Content-Disposition",
		"Content-Encoding", "Content-Length", "Content-Range", "Content-Type",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Location",
		"Retry-After", "Set-Cookie", "Trailer", "Transfer-Encoding", "Vary",
		"Www-Authenticate", "Allow", "X-Content-Type-Options", "X-Request-Id",
		"Traceparent", "Tracestate",
	} {
		m[k] = k
	}
	return m
}()

// readAnswer reads an answer's status line and headers from br for a
// request of method, adding the headers to hdr as the client is to see
// them: without hop-by-hop headers, those the Connection header names, and
// the instance's X-Request-Id (the proxy set the request's). Interim
// answers (1xx) are read and dropped. io.EOF means the connection ended
// before the first byte of an answer.
func readAnswer(br *bufio.Reader, method string, hdr http.Header) (framing, error) {
	for {
		f, err := readHead(br, method, hdr)
		if err != nil || f.status >= 200 {
			return f, err
		}
	}
}

// readHead reads one status line and its headers.
func readHead(br *bufio.Reader, method string, hdr http.Header) (framing, error) {
	budget := maxHeadBytes
	line, err := readLine(br, &budget)
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return framing{}, io.EOF
		}
		return framing{}, noEOF(err)
	}
	f, http10, err := parseStatus(line)
	if err != nil {
		return framing{}, err
	}
	interim := f.status < 200
	if interim && f.status == http.StatusSwitchingProtocols {
		return framing{}, fmt.Errorf("%w: 101 Switching Protocols to a request without Upgrade", errBadAnswer)
	}

	var (
		// The values are copied into vals as they are read (a line is
		// valid until the next read only) and become one string at the
		// end, with one slice backing every header's value: two
		// allocations for the head, not two per header.
		valBuf     [1024]byte
		vals       = valBuf[:0]
		fieldBuf   [24]headField
		fields     = fieldBuf[:0]
		length     = headField{key: "Content-Length"} // its value, once seen
		haveLength bool
		te         string
		connection []string
		keepAlive  bool
	)
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return framing{}, noEOF(err)
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return framing{}, fmt.Errorf("%w: folded header line", errBadAnswer)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || !validName(line[:i]) {
			return framing{}, fmt.Errorf("%w: header line %.40q", errBadAnswer, line)
		}
		value := bytes.TrimSpace(line[i+1:])
		if bytes.IndexByte(value, '\r') >= 0 {
			return framing{}, fmt.Errorf("%w: CR in a header value", errBadAnswer)
		}
		key, ok := commonHeaders[string(line[:i])]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(string(line[:i]))
		}
		switch key {
		case "Content-Length":
			if haveLength && !bytes.Equal(vals[length.start:length.end], value) {
				return framing{}, fmt.Errorf("%w: differing Content-Length values", errBadAnswer)
			}
			if !haveLength {
				length.start = len(vals)
				vals = append(vals, value...)
				length.end = len(vals)
				haveLength = true
			}
			continue
		case "Transfer-Encoding":
			te += "," + string(value)
			continue
		case "Connection":
			for _, tok := range strings.Split(string(value), ",") {
				switch tok = strings.ToLower(strings.TrimSpace(tok)); tok {
				case "close":
					f.close = true
				case "keep-alive":
					keepAlive = true
				case "":
				default:
					connection = append(connection, textproto.CanonicalMIMEHeaderKey(tok))
				}
			}
			continue
		case "X-Request-Id", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
			"Proxy-Authorization", "Te", "Trailer", "Upgrade":
			continue
		}
		if interim {
			continue
		}
		fields = append(fields, headField{key: key, start: len(vals)})
		vals = append(vals, value...)
		fields[len(fields)-1].end = len(vals)
	}
	if http10 && !keepAlive {
		f.close = true
	}
	if interim {
		return f, nil
	}

	switch {
	case method == http.MethodHead || f.status == http.StatusNoContent || f.status == http.StatusNotModified:
		f.length = 0
		if haveLength && method == http.MethodHead {
			// A HEAD answer says how long the GET's would be.
			fields = append(fields, length)
		}
	case te != "":
		codings := strings.Split(te[1:], ",")
		f.length = -1
		if strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") && len(codings) == 1 {
			f.chunked = true
		} else {
			// Any other coding is read until the connection closes.
			f.close = true
		}
		if haveLength {
			// Both framings: the length cannot be trusted, nor the
			// connection after it.
			f.close = true
		}
	case haveLength:
		n, ok := parseLength(vals[length.start:length.end])
		if !ok {
			return framing{}, fmt.Errorf("%w: Content-Length %q", errBadAnswer, string(vals[length.start:length.end]))
		}
		f.length = n
		fields = append(fields, length)
	default:
		f.length = -1
		f.close = true
	}
	for _, k := range connection {
		delete(hdr, k)
	}
	if len(fields) > 0 {
		all := string(vals)
		strs := make([]string, len(fields))
		for i, fd := range fields {
			if fd.key != "Content-Length" && slices.Contains(connection, fd.key) {
				continue
			}
			strs[i] = all[fd.start:fd.end]
			if old, ok := hdr[fd.key]; ok {
				hdr[fd.key] = append(old, strs[i])
			} else {
				hdr[fd.key] = strs[i : i+1 : i+1]
			}
		}
	}
	return f, nil
}

// headField is one header of an answer: its name and where its value is in
// the head's value bytes.
type headField struct {
	key        string
	start, end int
}

// parseLength parses a Content-Length value: decimal digits only, as RFC
// 9110 has it (no sign, no spaces), and within int64.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseStatus reads "HTTP/1.x NNN reason".
func parseStatus(line []byte) (f framing, http10 bool, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return framing{}, false, fmt.Errorf("%w: status line %.40q", errBadAnswer, line)
	}
	switch line[7] {
	case '0':
		http10 = true
	case '1':
	default:
		return framing{}, false, fmt.Errorf("%w: status line %.40q", errBadAnswer, line)
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return framing{}, false, fmt.Errorf("%w: status line %.40q", errBadAnswer, line)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return framing{}, false, fmt.Errorf("%w: status %d", errBadAnswer, code)
	}
	return framing{status: code}, http10, nil
}

// validName reports whether b is a header name: an RFC 9110 token.
func validName(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// readLine returns the next line of br without its line ending, valid
// until the next read; budget is what the head may still take.
func readLine(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A line longer than the buffer: rare, so it may allocate.
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= *budget {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*budget -= len(line)
	if *budget < 0 {
		return nil, fmt.Errorf("%w: head over %d bytes", errBadAnswer, maxHeadBytes)
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// noEOF turns an end of the connection inside a head into
// io.ErrUnexpectedEOF: the answer began, so it is no idle connection
// closed by the instance.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// body reads an answer's body as its framing says. Its readers live in the
// connection, so reading a body allocates nothing but a chunked one's.
func (uc *upConn) body(f framing) io.Reader {
	switch {
	case f.chunked:
		uc.chunks = chunkedBody{uc: uc, r: httputil.NewChunkedReader(uc.br)}
		return &uc.chunks
	case f.length >= 0:
		uc.fixed = fixedBody{br: uc.br, left: f.length}
		return &uc.fixed
	default:
		return uc.br // until the connection closes
	}
}

// fixedBody is a body of a known length.
type fixedBody struct {
	br   *bufio.Reader
	left int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkedBody is a chunked body; at its end it reads the trailer section
// into trailers, which the caller passes on after the body.
type chunkedBody struct {
	uc       *upConn
	r        io.Reader
	done     bool
	trailers http.Header
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err != io.EOF {
		return n, err
	}
	b.done = true
	budget := maxHeadBytes
	for {
		line, err := readLine(b.uc.br, &budget)
		if err != nil {
			return n, noEOF(err)
		}
		if len(line) == 0 {
			return n, io.EOF
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || !validName(line[:i]) {
			return n, fmt.Errorf("%w: trailer line %.40q", errBadAnswer, line)
		}
		if b.trailers == nil {
			b.trailers = http.Header{}
		}
		b.trailers.Add(string(line[:i]), string(bytes.TrimSpace(line[i+1:])))
	}
}
