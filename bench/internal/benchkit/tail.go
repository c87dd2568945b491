package benchkit

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// tail keeps the last bytes written to it, enough to explain a failure.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// FileTail returns the last bytes of the file at path, for error messages:
// the log of a child that wrote to a file rather than to its tail.
func FileTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailSize {
		_, _ = f.Seek(-tailSize, io.SeekEnd)
	}
	var t tail
	buf := make([]byte, tailSize)
	n, _ := f.Read(buf)
	_, _ = t.Write(buf[:n])
	return t.String()
}
