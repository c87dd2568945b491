package registry

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// TestOpenBucketStoppedQuietly: a stop while the bucket is still out of
// reach (a node stopped during its first moments) is no news, and logs no
// warning; it ends OpenBucket with the context's error.
func TestOpenBucketStoppedQuietly(t *testing.T) {
	nc := connect(t, "nobody there", "nats://127.0.0.1:1")
	var warned atomic.Value // the line that said "not reachable yet", if any
	logger := log.LoggerFunc(func(kv ...any) error {
		if line := fmt.Sprint(kv...); strings.Contains(line, "not reachable yet") {
			warned.Store(line)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := OpenBucket(ctx, nc, BucketConfig{Name: bucketName(t), TTL: 3 * time.Second, Logger: logger})
	if err == nil {
		t.Fatal("opened a bucket with no server")
	}
	if line := warned.Load(); line != nil {
		t.Errorf("logged a warning for a stop: %v", line)
	}
}
