package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/storage"
)

// put sends a raw upload of data through base (the proxy or storage) and
// returns the status and the error body, if any.
func put(t *testing.T, ctx context.Context, base, p string, data []byte) (int, wireError) {
	t.Helper()
	tok, _ := transport.BearerFrom(ctx)
	req, err := http.NewRequest(http.MethodPut, base+"/api/v1/files/"+p, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", p, err)
	}
	defer resp.Body.Close()
	var we wireError
	if resp.StatusCode/100 != 2 {
		if err := json.NewDecoder(resp.Body).Decode(&we); err != nil {
			t.Errorf("PUT %s: %d with a body that is not a JSON error: %v", p, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, we
}

// listing is what a listing shows of each file: its etag, by path.
func listing(t *testing.T, c *storage.Client, ctx context.Context, dir string) map[string]string {
	t.Helper()
	l, err := c.List(ctx, dir)
	if errors.Is(err, storage.ErrDirNotFound) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatalf("list %q: %v", dir, err)
	}
	out := map[string]string{}
	for _, e := range l.Entries {
		out[e.Path] = e.ETag
	}
	return out
}

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it when
// the test ends; it skips the test, saying why, when it cannot.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full file system needs a tmpfs mount, which needs root")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs at %s: %v", dir, err)
	}
	// Registered before the server starts, so it runs after the server
	// stopped.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// filler fills a file system with files of one page each, so that space
// can be handed back a page at a time.
type filler struct {
	dir   string
	files []string
}

// fill writes pages until the file system is full.
func (f *filler) fill(t *testing.T) {
	t.Helper()
	page := bytes.Repeat([]byte("f"), os.Getpagesize())
	for i := len(f.files); ; i++ {
		name := filepath.Join(f.dir, fmt.Sprintf("page-%05d", i))
		err := os.WriteFile(name, page, 0o600)
		if errors.Is(err, syscall.ENOSPC) {
			_ = os.Remove(name)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f.files = append(f.files, name)
		if i > 1<<20 {
			t.Fatal("the file system never filled up")
		}
	}
}

// free hands back one page; false when none is left to hand back.
func (f *filler) free(t *testing.T) bool {
	t.Helper()
	if len(f.files) == 0 {
		return false
	}
	last := f.files[len(f.files)-1]
	f.files = f.files[:len(f.files)-1]
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestFullDiskIs507 runs storage on a real, small file system, fills it,
// and checks that uploads are 507 insufficient_storage storage.no_space
// and change nothing: no new file appears, a replaced file keeps its old
// bytes, the listing stays as it was, and nothing is left in tmp/. Then it
// hands the space back a page at a time, so that uploads fail at every
// step of the write path in turn, the metadata commit included, with the
// same guarantees.
func TestFullDiskIs507(t *testing.T) {
	data := mountTmpfs(t, "2m")
	e := newEnv(t)
	e.vars["OCIS_STORAGE_DATA_DIR"] = data
	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	alice := e.userCtx("alice")
	c := e.storageVia("proxy")
	proxy := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]
	old := bytes.Repeat([]byte("old content "), 300)
	if _, _, err := c.Upload(alice, "keep.txt", bytes.NewReader(old), int64(len(old)), storage.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Upload(alice, "n/first.txt", strings.NewReader("first"), 5, storage.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	fill := &filler{dir: filepath.Join(data, "filler")}
	if err := os.Mkdir(fill.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fill.fill(t)

	root, n := listing(t, c, alice, ""), listing(t, c, alice, "n/")
	// unchanged checks what a refused upload must leave as it was.
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if got := listing(t, c, alice, ""); !equalMaps(got, root) {
			t.Errorf("%s: root listing %v, want %v", what, got, root)
		}
		if got := listing(t, c, alice, "n/"); !equalMaps(got, n) {
			t.Errorf("%s: n/ listing %v, want %v", what, got, n)
		}
		if got, _, err := download(t, c, alice, "keep.txt", ""); err != nil || !bytes.Equal(got, old) {
			t.Errorf("%s: keep.txt = %d bytes (%v), want the %d old ones", what, len(got), err, len(old))
		}
		if left := dirNamesOf(t, filepath.Join(data, "tmp")); len(left) != 0 {
			t.Errorf("%s: tmp/ holds %v", what, left)
		}
	}
	// refused checks a refusal and returns the step it names.
	refused := func(t *testing.T, what string, status int, we wireError) string {
		t.Helper()
		if status != http.StatusInsufficientStorage || we.Error.Code != "insufficient_storage" || we.Error.Reason != "storage.no_space" {
			t.Errorf("%s: %d %+v, want 507 insufficient_storage storage.no_space", what, status, we.Error)
		}
		if strings.Contains(we.Error.Message, data) {
			t.Errorf("%s: the message names a server path: %q", what, we.Error.Message)
		}
		step, _, _ := strings.Cut(strings.TrimPrefix(we.Error.Message, "no space left on the storage device: "), " \"")
		return step
	}

	t.Run("full", func(t *testing.T) {
		status, we := put(t, alice, proxy, "n/new.txt", []byte("new"))
		refused(t, "new file", status, we)
		unchanged(t, "new file")
		status, we = put(t, alice, proxy, "keep.txt", bytes.Repeat([]byte("new content "), 300))
		refused(t, "overwrite", status, we)
		unchanged(t, "overwrite")
	})

	// A page at a time, a new file and an overwrite each round: the
	// upload's own page comes first, so an upload fails, if at all,
	// where the metadata needs more. That is the commit that used to
	// leave the file in place, and the old content overwritten.
	t.Run("page by page", func(t *testing.T) {
		const atCommit = "recording the metadata of"
		steps := map[string]int{}
		for i := 0; fill.free(t) && (steps["new "+atCommit] == 0 || steps["overwrite "+atCommit] == 0); i++ {
			p := fmt.Sprintf("n/%03d.txt", i)
			status, we := put(t, alice, proxy, p, []byte(p))
			if status/100 == 2 {
				n, root = listing(t, c, alice, "n/"), listing(t, c, alice, "")
			} else {
				steps["new "+refused(t, p, status, we)]++
				unchanged(t, p)
			}
			content := bytes.Repeat([]byte(p), 300)
			status, we = put(t, alice, proxy, "keep.txt", content)
			if status/100 == 2 {
				old, root = content, listing(t, c, alice, "")
			} else {
				steps["overwrite "+refused(t, "overwrite in round "+p, status, we)]++
				unchanged(t, "overwrite in round "+p)
			}
		}
		t.Logf("refusals by step: %v", steps)
		if steps["new "+atCommit] == 0 || steps["overwrite "+atCommit] == 0 {
			t.Errorf("no new file and no overwrite failed at the metadata commit")
		}
	})

	t.Run("space again", func(t *testing.T) {
		for fill.free(t) {
		}
		if _, _, err := c.Upload(alice, "keep.txt", strings.NewReader("new"), 3, storage.UploadOptions{}); err != nil {
			t.Errorf("overwrite with space again: %v", err)
		}
		if got, _, err := download(t, c, alice, "keep.txt", ""); err != nil || string(got) != "new" {
			t.Errorf("keep.txt = %q (%v), want \"new\"", got, err)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func dirNamesOf(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// slowUpload sends an upload of a declared 64 MiB through c, a KiB every
// 50ms, until stop is closed; it reports the upload's error.
func slowUpload(c *storage.Client, ctx context.Context, p string, stop <-chan struct{}) <-chan error {
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("s"), 1<<10)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			select {
			case <-stop:
				pw.CloseWithError(errors.New("the test is over"))
				return
			case <-tick.C:
			}
		}
	}()
	errs := make(chan error, 1)
	go func() {
		_, _, err := c.Upload(ctx, p, pr, 64<<20, storage.UploadOptions{})
		pr.CloseWithError(errors.New("upload answered"))
		errs <- err
	}()
	return errs
}

// TestKillStorageCutsUploads runs `ocis kill storage` while two uploads
// trickle in, one through the proxy (the colocated call) and one to
// storage directly, and checks: kill returns within the shutdown timeout
// and a grace; both uploads are answered 503 unavailable (the answer of a
// PUT is only written after its commit, so it was never sent before the
// cut); no temp file is left; the logs show no 500 and no use of a closed
// file; and `ocis run storage` serves the user's earlier files intact.
func TestKillStorageCutsUploads(t *testing.T) {
	const drain = time.Second
	e := newEnv(t)
	e.vars["OCIS_STORAGE_SHUTDOWN_TIMEOUT"] = drain.String()
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	alice := e.userCtx("alice")
	viaProxy, direct := e.storageVia("proxy"), e.storageVia("storage")
	earlier := map[string]string{"a.txt": "earlier a", "dir/b.txt": "earlier b"}
	for path, content := range earlier {
		if _, _, err := viaProxy.Upload(alice, path, strings.NewReader(content), int64(len(content)), storage.UploadOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	defer close(stop)
	cut := map[string]<-chan error{
		"through the proxy": slowUpload(viaProxy, alice, "slow-proxy.bin", stop),
		"to storage":        slowUpload(direct, alice, "slow-direct.bin", stop),
	}
	tmp := filepath.Join(e.dir, "storage", "tmp")
	waitFor(t, "both uploads under way", 10*time.Second, func() bool { return len(dirNamesOf(t, tmp)) == 2 })

	begin := time.Now()
	code, stdout, stderr := e.run("kill", "storage")
	took := time.Since(begin)
	if code != 0 || !strings.Contains(stdout, "stopped") {
		t.Fatalf("kill storage: %d %q %q", code, stdout, stderr)
	}
	t.Logf("kill returned after %s", took)
	if took > drain+2*time.Second {
		t.Errorf("kill took %s, want at most the %s shutdown timeout and a grace", took, drain)
	}
	for via, errs := range cut {
		select {
		case err := <-errs:
			var kind *apierr.Error
			if !errors.As(err, &kind) || kind.Code != apierr.CodeUnavailable || kind.Reason != "unavailable" {
				t.Errorf("upload %s: %v, want 503 unavailable", via, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("upload %s got no answer", via)
		}
	}
	if left := dirNamesOf(t, tmp); len(left) != 0 {
		t.Errorf("tmp/ holds %v after the kill", left)
	}
	logs := p.stdout.String() + p.stderr.String()
	for _, bad := range []string{"already closed", "status=500", "internal error"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the logs say %q", bad)
		}
	}

	if code, _, stderr := e.run("run", "storage"); code != 0 {
		t.Fatalf("run storage: %s", stderr)
	}
	got := listing(t, viaProxy, alice, "")
	if _, dir := got["dir/"]; len(got) != 2 || got["a.txt"] == "" || !dir {
		t.Errorf("root after the restart: %v, want a.txt and dir/ alone", got)
	}
	for path, content := range earlier {
		body, _, err := download(t, viaProxy, alice, path, "")
		if err != nil || string(body) != content {
			t.Errorf("%s after the restart = %q (%v), want %q", path, body, err, content)
		}
	}
}
