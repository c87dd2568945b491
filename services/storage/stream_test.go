package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"runtime"
	"testing"
)

// heapWatch records the largest heap in use above a baseline, sampled
// every few MiB of a stream.
type heapWatch struct {
	base, peak uint64
	seen, next int64
}

const sampleEvery = 4 << 20

func newHeapWatch() *heapWatch {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &heapWatch{base: m.HeapInuse, peak: m.HeapInuse}
}

func (h *heapWatch) add(n int) {
	h.seen += int64(n)
	if h.seen < h.next {
		return
	}
	h.next = h.seen + sampleEvery
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.peak = max(h.peak, m.HeapInuse)
}

func (h *heapWatch) growth() uint64 { return h.peak - h.base }

func TestUploadAndDownloadStream(t *testing.T) {
	const size = 64 << 20
	const limit = 16 << 20
	e := newTestEnv(t, 0)
	alice := e.as(t, "alice")

	sent := sha256.New()
	watch := newHeapWatch()
	gen := &generator{state: 42, remaining: size, onRead: func(p []byte) {
		sent.Write(p)
		watch.add(len(p))
	}}
	fi, created, err := e.client.Upload(alice, "big/stream.bin", gen, size, UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantETag := `"` + hex.EncodeToString(sent.Sum(nil)) + `"`
	if !created || fi.Size != size || fi.ETag != wantETag {
		t.Errorf("upload = (%+v, created %t), want %d bytes with etag %s", fi, created, size, wantETag)
	}
	t.Logf("heap growth during the upload: %d KiB", watch.growth()>>10)
	if got := watch.growth(); got > limit {
		t.Errorf("the heap grew by %d MiB during the upload, want under %d", got>>20, limit>>20)
	}

	watch = newHeapWatch()
	rc, info, err := e.client.Download(alice, "big/stream.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, io.TeeReader(rc, writerFunc(func(p []byte) { watch.add(len(p)) })))
	if err != nil {
		t.Fatal(err)
	}
	if n != size || info.File.ETag != wantETag || `"`+hex.EncodeToString(got.Sum(nil))+`"` != wantETag {
		t.Errorf("downloaded %d bytes, etag %s; want %d with %s", n, info.File.ETag, size, wantETag)
	}
	t.Logf("heap growth during the download: %d KiB", watch.growth()>>10)
	if grew := watch.growth(); grew > limit {
		t.Errorf("the heap grew by %d MiB during the download, want under %d", grew>>20, limit>>20)
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
