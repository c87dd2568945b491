package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
)

// trickle is an upload body that sends a KiB every 20ms until done is
// closed: a sender slower than any drain.
type trickle struct {
	done <-chan struct{}
	sent bool
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.sent {
		select {
		case <-r.done:
			return 0, io.ErrUnexpectedEOF
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.sent = true
	return copy(p, bytes.Repeat([]byte("t"), min(len(p), 1<<10))), nil
}

// TestStopCutsUploads stops the service while two uploads trickle in, one
// on its listener and one through its in-process handler (as the proxy
// calls it), and checks that at the end of the drain both are answered
// 503 unavailable, that the stop ends within the drain and a grace, that
// no upload is left in tmp/ and nothing ran on closed files, and that the
// next run serves the files from before intact.
func TestStopCutsUploads(t *testing.T) {
	const drain = 300 * time.Millisecond
	dir := t.TempDir()
	var logs servicetest.Logs
	cfg, env := testRunConfig(dir, log.NewLogfmtLogger(&logs))
	cfg.Base().ShutdownTimeout = drain
	s := servicetest.Start(t, cfg, env)
	direct, alice := runClient(t, s, "alice")
	if _, _, err := direct.Upload(alice, "kept.txt", strings.NewReader("kept"), 4, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(s.Addrs.Handler)
	defer front.Close()
	local, err := NewClient(front.URL, nil)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	defer close(done)
	errs := make(chan error, 2)
	for i, c := range []*Client{direct, local} {
		go func() {
			_, _, err := c.Upload(alice, []string{"direct.bin", "local.bin"}[i], &trickle{done: done}, 64<<20, UploadOptions{})
			errs <- err
		}()
	}
	waitFor(t, "both uploads in tmp/", func() bool { return len(dirNames(t, filepath.Join(dir, "tmp"))) == 2 })

	begin := time.Now()
	if err := s.Stop(t); err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
	stopped := time.Since(begin)
	t.Logf("stopped %s after the cancel", stopped)
	if stopped < drain || stopped > drain+1500*time.Millisecond {
		t.Errorf("stop took %s, want the %s drain and at most a grace", stopped, drain)
	}
	for range 2 {
		select {
		case err := <-errs:
			var kind *apierr.Error
			if !errors.Is(err, apierr.ErrUnavailable) || !errors.As(err, &kind) || kind.Reason != "unavailable" {
				t.Errorf("cut upload: %v, want 503 unavailable", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an upload got no answer")
		}
	}
	if left := dirNames(t, filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ holds %v after the stop", left)
	}
	for _, bad := range []string{"already closed", "internal error", "panic"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("the logs say %q:\n%s", bad, logs.String())
		}
	}

	s = servicetest.Start(t, cfg, env)
	direct, alice = runClient(t, s, "alice")
	l, err := direct.List(alice, "")
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Path != "kept.txt" {
		t.Errorf("listing after the restart = (%+v, %v), want kept.txt alone", l, err)
	}
	body, _, err := direct.Download(alice, "kept.txt", "")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if got, _ := io.ReadAll(body); string(got) != "kept" {
		t.Errorf("kept.txt = %q, want \"kept\"", got)
	}
}

// waitFor polls cond until it holds, for at most ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
