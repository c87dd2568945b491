package registry

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOpenBucketStoppedQuietly: a stop while the bucket is still out of
// reach (a node stopped during its first moments) is no news, and logs no
// warning; it ends OpenBucket with the context's error.
func TestOpenBucketStoppedQuietly(t *testing.T) {
	nc := connect(t, "nobody there", "nats://127.0.0.1:1")
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := OpenBucket(ctx, nc, BucketConfig{Name: bucketName(t), TTL: 3 * time.Second, Logger: log.NewLogfmtLogger(&out)})
	if err == nil {
		t.Fatal("opened a bucket with no server")
	}
	if strings.Contains(out.String(), "not reachable yet") {
		t.Errorf("logged a warning for a stop:\n%s", out.String())
	}
	t.Logf("err: %v; log: %q", err, out.String())
}
