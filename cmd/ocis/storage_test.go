package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// storageVia returns a storage client at the proxy or at storage itself.
func (e *env) storageVia(service string) *storage.Client {
	e.t.Helper()
	c, err := storage.NewClient("http://"+e.vars[strings.ToUpper("OCIS_"+service+"_HTTP_ADDR")], nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// userCtx creates a user (as admin) and returns a context carrying their token.
func (e *env) userCtx(name string) context.Context {
	e.t.Helper()
	c := e.proxyUsers()
	admin := e.adminCtx(c)
	if _, err := c.CreateUser(admin, users.CreateUserRequest{Username: name, Password: name + "-pass-1"}); err != nil && !errors.Is(err, users.ErrUserExists) {
		e.t.Fatalf("create %s: %v", name, err)
	}
	tok, err := c.Login(context.Background(), users.LoginRequest{Username: name, Password: name + "-pass-1"})
	if err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return transport.WithBearer(context.Background(), tok.Token)
}

func download(t *testing.T, c *storage.Client, ctx context.Context, path, rng string) ([]byte, storage.DownloadInfo, error) {
	t.Helper()
	body, info, err := c.Download(ctx, path, rng)
	if err != nil {
		return nil, info, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, info, err
}

func TestFilesThroughProxy(t *testing.T) {
	e, _ := startFamily(t)
	alice, bob := e.userCtx("alice"), e.userCtx("bob")
	c := e.storageVia("proxy")

	content := []byte("hello, files that are never lost\n")
	info, created, err := c.Upload(alice, "docs/hello.txt", bytes.NewReader(content), int64(len(content)), storage.UploadOptions{})
	if err != nil || !created || info.Size != int64(len(content)) {
		t.Fatalf("upload: %+v created=%v %v", info, created, err)
	}
	sum := sha256.Sum256(content)
	if want := `"` + hex.EncodeToString(sum[:]) + `"`; info.ETag != want {
		t.Errorf("etag = %s, want %s", info.ETag, want)
	}

	t.Run("download is byte-identical", func(t *testing.T) {
		got, _, err := download(t, c, alice, "docs/hello.txt", "")
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("download = %q, %v", got, err)
		}
	})
	t.Run("range", func(t *testing.T) {
		got, di, err := download(t, c, alice, "docs/hello.txt", "bytes=7-11")
		if err != nil || string(got) != "files" || !di.Partial {
			t.Errorf("range = %q partial=%v, %v; want \"files\", 206", got, di.Partial, err)
		}
	})
	t.Run("list", func(t *testing.T) {
		l, err := c.List(alice, "docs/")
		if err != nil || len(l.Entries) != 1 || l.Entries[0].Path != "docs/hello.txt" {
			t.Errorf("list = %+v, %v", l, err)
		}
	})
	t.Run("conditional uploads", func(t *testing.T) {
		_, _, err := c.Upload(alice, "docs/hello.txt", strings.NewReader("x"), 1, storage.UploadOptions{IfNoneMatch: "*"})
		if !errors.Is(err, apierr.ErrPreconditionFailed) {
			t.Errorf("If-None-Match * on existing: %v, want precondition_failed", err)
		}
		_, _, err = c.Upload(alice, "docs/hello.txt", strings.NewReader("x"), 1, storage.UploadOptions{IfMatch: `"not-the-etag"`})
		if !errors.Is(err, apierr.ErrPreconditionFailed) {
			t.Errorf("If-Match mismatch: %v, want precondition_failed", err)
		}
		replaced, created, err := c.Upload(alice, "docs/hello.txt", strings.NewReader("v2"), 2, storage.UploadOptions{IfMatch: info.ETag})
		if err != nil || created || replaced.ETag == info.ETag {
			t.Errorf("If-Match current: %+v created=%v %v; want replaced with a new etag", replaced, created, err)
		}
	})
	t.Run("users are isolated", func(t *testing.T) {
		if _, _, err := download(t, c, bob, "docs/hello.txt", ""); !errors.Is(err, apierr.ErrNotFound) {
			t.Errorf("bob reads alice's path: %v, want not_found", err)
		}
		if err := c.Delete(bob, "docs/hello.txt"); !errors.Is(err, apierr.ErrNotFound) {
			t.Errorf("bob deletes alice's path: %v, want not_found", err)
		}
		if _, _, err := c.Upload(bob, "docs/hello.txt", strings.NewReader("bob's"), 5, storage.UploadOptions{}); err != nil {
			t.Fatalf("bob writes his own docs/hello.txt: %v", err)
		}
		got, _, err := download(t, c, alice, "docs/hello.txt", "")
		if err != nil || string(got) != "v2" {
			t.Errorf("alice's file after bob's upload = %q, %v; want v2", got, err)
		}
		l, err := c.List(bob, "")
		if err != nil || len(l.Entries) != 1 {
			t.Errorf("bob's root = %+v, %v; want only his docs/", l, err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := c.Delete(alice, "docs/hello.txt"); err != nil {
			t.Errorf("delete: %v", err)
		}
		if err := c.Delete(alice, "docs/hello.txt"); !errors.Is(err, apierr.ErrNotFound) {
			t.Errorf("second delete: %v, want not_found", err)
		}
	})

	tok, _ := transport.BearerFrom(alice)
	for _, target := range []string{"proxy", "storage"} {
		base := "http://" + e.vars[strings.ToUpper("OCIS_"+target+"_HTTP_ADDR")]
		tests := []struct {
			name, method, path string
			token              bool
			wantStatus         int
			wantCode           string
		}{
			{"no token", "GET", "/api/v1/files/x", false, 401, "unauthenticated"},
			{"no token upload", "PUT", "/api/v1/files/x", false, 401, "unauthenticated"},
			{"dot-dot", "GET", "/api/v1/files/a/../../etc/passwd", true, 400, "invalid_argument"},
			{"escaped dot-dot", "GET", "/api/v1/files/a/%2e%2e/%2e%2e/etc/passwd", true, 400, "invalid_argument"},
			{"absolute", "GET", "/api/v1/files//etc/passwd", true, 400, "invalid_argument"},
			{"NUL byte", "PUT", "/api/v1/files/a%00b", true, 400, "invalid_argument"},
			{"backslash", "PUT", "/api/v1/files/a%5c..%5cb", true, 400, "invalid_argument"},
			{"over-long name", "PUT", "/api/v1/files/" + strings.Repeat("n", 256), true, 400, "invalid_argument"},
			{"missing file", "GET", "/api/v1/files/nothing-here", true, 404, "not_found"},
		}
		for _, tt := range tests {
			t.Run(target+" "+tt.name, func(t *testing.T) {
				token := ""
				if tt.token {
					token = tok
				}
				expectError(t, tt.method, base+tt.path, token, "data", tt.wantStatus, tt.wantCode)
			})
		}
	}

	t.Run("killed storage is 503 within a second, then back", func(t *testing.T) {
		if code, _, stderr := e.run("kill", "storage"); code != 0 {
			t.Fatalf("kill storage: %s", stderr)
		}
		ctx, cancel := context.WithTimeout(alice, time.Second)
		defer cancel()
		_, _, err := c.Upload(ctx, "while-down.txt", strings.NewReader("x"), 1, storage.UploadOptions{})
		if !errors.Is(err, apierr.ErrUnavailable) {
			t.Errorf("upload with storage killed: %v, want unavailable (503)", err)
		}
		if code, _, stderr := e.run("run", "storage"); code != 0 {
			t.Fatalf("run storage: %s", stderr)
		}
		if _, _, err := c.Upload(alice, "after.txt", strings.NewReader("x"), 1, storage.UploadOptions{}); err != nil {
			t.Errorf("upload after ocis run storage: %v", err)
		}
	})
}

func TestQuota(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_STORAGE_QUOTA"] = strconv.Itoa(1 << 20)
	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	alice := e.userCtx("alice")
	c := e.storageVia("proxy")

	big := bytes.Repeat([]byte("b"), 2<<20)
	if _, _, err := c.Upload(alice, "big", bytes.NewReader(big), int64(len(big)), storage.UploadOptions{}); !errors.Is(err, apierr.ErrTooLarge) {
		t.Errorf("upload over the whole quota: %v, want too_large (413)", err)
	}
	part := bytes.Repeat([]byte("p"), 600<<10)
	if _, _, err := c.Upload(alice, "one", bytes.NewReader(part), int64(len(part)), storage.UploadOptions{}); err != nil {
		t.Fatalf("first part: %v", err)
	}
	if _, _, err := c.Upload(alice, "two", bytes.NewReader(part), int64(len(part)), storage.UploadOptions{}); !errors.Is(err, apierr.ErrInsufficientSpace) {
		t.Errorf("upload past the quota: %v, want insufficient_storage (507)", err)
	}
	l, err := c.List(alice, "")
	if err != nil || len(l.Entries) != 1 {
		t.Errorf("after refused uploads: %+v, %v; want only \"one\"", l, err)
	}
}

// generated is a deterministic stream of n bytes that never sits in memory.
type generated struct {
	rng  *rand.ChaCha8
	left int64
}

func newGenerated(seed uint64, n int64) *generated {
	var s [32]byte
	copy(s[:], fmt.Sprintf("%032d", seed))
	return &generated{rng: rand.NewChaCha8(s), left: n}
}

func (g *generated) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.left -= int64(n)
	return n, nil
}

func sumOf(r io.Reader) string {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

// rssKiB reads a process's resident set (VmRSS) or its peak (VmHWM).
func rssKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestLargeUploadStreams sends 100 MiB through the proxy and checks the
// server's peak memory grows by a few MiB only, then reads it back whole.
func TestLargeUploadStreams(t *testing.T) {
	e, p := startFamily(t)
	alice := e.userCtx("alice")
	c := e.storageVia("proxy")
	const size = 100 << 20
	pid := p.cmd.Process.Pid
	before := rssKiB(t, pid, "VmRSS")

	info, _, err := c.Upload(alice, "big.bin", newGenerated(1, size), size, storage.UploadOptions{})
	if err != nil || info.Size != size {
		t.Fatalf("upload: %+v, %v", info, err)
	}
	body, _, err := c.Download(alice, "big.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	got := sumOf(body)
	body.Close()
	if want := sumOf(newGenerated(1, size)); got != want || info.ETag != `"`+want+`"` {
		t.Errorf("downloaded sha256 %s, etag %s; want %s", got, info.ETag, want)
	}
	peak := rssKiB(t, pid, "VmHWM")
	if growth := peak - before; growth > 48<<10 {
		t.Errorf("peak RSS grew by %d MiB for a 100 MiB upload and download; bodies are being buffered", growth>>10)
	}
	t.Logf("RSS before %d MiB, peak after 100 MiB up and down %d MiB", before>>10, peak>>10)
}

// TestSIGKILLKeepsAcknowledgedUploads kills the whole server while uploads
// run, restarts it on the same data, and checks that every upload that got
// a 2xx is there and intact and that no partial file is visible.
func TestSIGKILLKeepsAcknowledgedUploads(t *testing.T) {
	e, p := startFamily(t)
	alice := e.userCtx("alice")
	token, _ := transport.BearerFrom(alice)
	c := e.storageVia("proxy")

	type upload struct {
		path string
		size int64
		seed uint64
	}
	var (
		mu    sync.Mutex
		acked = map[string]upload{}
		tried = map[string]upload{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(alice)
	defer cancel()
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				u := upload{path: fmt.Sprintf("w%d/f%03d.bin", w, i), size: int64(64<<10 + (w*7919+i*104729)%(3<<20)), seed: uint64(w*1000 + i)}
				mu.Lock()
				tried[u.path] = u
				mu.Unlock()
				if _, _, err := c.Upload(ctx, u.path, newGenerated(u.seed, u.size), u.size, storage.UploadOptions{}); err != nil {
					return
				}
				mu.Lock()
				acked[u.path] = u
				mu.Unlock()
			}
		}()
	}
	waitFor(t, "20 acknowledged uploads", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	cancel()
	wg.Wait()

	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	alice = transport.WithBearer(context.Background(), token)
	for _, u := range acked {
		body, info, err := c.Download(alice, u.path, "")
		if err != nil {
			t.Errorf("acknowledged %s lost: %v", u.path, err)
			continue
		}
		got := sumOf(body)
		body.Close()
		if want := sumOf(newGenerated(u.seed, u.size)); got != want || info.File.Size != u.size {
			t.Errorf("acknowledged %s damaged: %d bytes, sha256 %s; want %d, %s", u.path, info.File.Size, got, u.size, want)
		}
	}
	// Every visible file is whole: acknowledged, or complete but killed
	// before its answer went out; never a prefix.
	visible := 0
	for w := range 6 {
		l, err := c.List(alice, fmt.Sprintf("w%d/", w))
		if errors.Is(err, apierr.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("list w%d: %v", w, err)
		}
		for _, entry := range l.Entries {
			visible++
			u, ok := tried[entry.Path]
			if !ok {
				t.Errorf("unknown file %s visible", entry.Path)
				continue
			}
			sum := sumOf(newGenerated(u.seed, u.size))
			if entry.Size != u.size || entry.ETag != `"`+sum+`"` {
				t.Errorf("partial file visible: %s is %d bytes (etag %s), want %d (%s)", entry.Path, entry.Size, entry.ETag, u.size, sum)
			}
		}
	}
	if visible < len(acked) {
		t.Errorf("%d files visible, fewer than the %d acknowledged", visible, len(acked))
	}
	t.Logf("%d uploads acknowledged before SIGKILL, %d files visible after restart", len(acked), visible)
}
