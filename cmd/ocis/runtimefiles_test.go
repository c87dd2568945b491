package main

import (
	"os"
	"syscall"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// TestPublishControl checks the files a CLI finds the runtime by: written
// whole with mode 0600, the token file left as it is when it already holds
// the token with that mode, and the address removed at the stop only
// while it is ours.
func TestPublishControl(t *testing.T) {
	shared := &service.Shared{BaseDataPath: t.TempDir()}
	inode := func(path string) uint64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	unpublish, err := publishControl(shared, "127.0.0.1:9250", "first")
	if err != nil {
		t.Fatal(err)
	}
	if got := recordedToken(shared); got != "first" {
		t.Errorf("token file holds %q, want first", got)
	}
	if got := recordedAddr(shared); got != "127.0.0.1:9250" {
		t.Errorf("address file holds %q, want 127.0.0.1:9250", got)
	}
	unpublish()
	if got := recordedAddr(shared); got != "" {
		t.Errorf("address file still holds %q after the stop", got)
	}

	t.Run("the same token is not written again", func(t *testing.T) {
		before := inode(tokenPath(shared))
		if _, err := publishControl(shared, "127.0.0.1:9251", "first"); err != nil {
			t.Fatal(err)
		}
		if after := inode(tokenPath(shared)); after != before {
			t.Errorf("token file replaced (inode %d, was %d)", after, before)
		}
	})
	t.Run("another token replaces the file", func(t *testing.T) {
		before := inode(tokenPath(shared))
		if _, err := publishControl(shared, "127.0.0.1:9251", "second"); err != nil {
			t.Fatal(err)
		}
		if got := recordedToken(shared); got != "second" {
			t.Errorf("token file holds %q, want second", got)
		}
		if after := inode(tokenPath(shared)); after == before {
			t.Error("token file written in place, not replaced whole")
		}
	})
	t.Run("a token file open to others is replaced", func(t *testing.T) {
		if err := os.Chmod(tokenPath(shared), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := publishControl(shared, "127.0.0.1:9251", "second"); err != nil {
			t.Fatal(err)
		}
		inode(tokenPath(shared)) // fails unless the mode is 0600 again
		if got := recordedToken(shared); got != "second" {
			t.Errorf("token file holds %q, want second", got)
		}
	})
	t.Run("a stop leaves a newer runtime's address", func(t *testing.T) {
		unpublish, err := publishControl(shared, "127.0.0.1:9252", "second")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := publishControl(shared, "127.0.0.1:9253", "second"); err != nil {
			t.Fatal(err)
		}
		unpublish()
		if got := recordedAddr(shared); got != "127.0.0.1:9253" {
			t.Errorf("address file holds %q, want the newer 127.0.0.1:9253", got)
		}
	})
}
