package storage

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
)

// TestDeletedAccountFilesRemoved shows that a deletion on the revocation
// list removes that account's files and records, and no one else's, both
// when it arrives while the service runs and when it was recorded before
// the service started.
func TestDeletedAccountFilesRemoved(t *testing.T) {
	e := newTestEnv(t, 0)
	for _, user := range []string{"id-alice", "id-bob", "id-carol"} {
		if _, _, err := e.client.Upload(e.as(t, user), "notes/a.txt", strings.NewReader("hello "+user), -1, UploadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	revoked := auth.NewRevocations()
	// carol was deleted while storage was down: the replay at subscribe
	// removes her files.
	revoked.Revoke(auth.Revocation{Subject: "id-carol", Deleted: true})

	remover := newAccountRemover(log.NewNopLogger(), e.files, revoked)
	actor := remover.actor()
	done := make(chan error, 1)
	go func() { done <- actor.Execute() }()
	t.Cleanup(func() {
		actor.Interrupt(nil)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	waitGone(t, e, "id-carol")
	revoked.Revoke(auth.Revocation{Subject: "id-alice", Deleted: true})
	// A raised generation is no deletion: bob keeps his files.
	revoked.Revoke(auth.Revocation{Subject: "id-bob", MinGen: 5})
	waitGone(t, e, "id-alice")

	if _, err := e.files.disk.files.Lstat("id-bob"); err != nil {
		t.Errorf("bob's tree: %v", err)
	}
	if r := e.record(t, "id-bob", "notes/a.txt"); r.Size == 0 {
		t.Error("bob's record was dropped")
	}
	if n, err := e.files.store.usage("id-bob"); err != nil || n == 0 {
		t.Errorf("bob's usage = %d, %v; want his bytes", n, err)
	}
}

// waitGone polls until user's tree, records and usage are gone.
func waitGone(t *testing.T, e *testEnv, user string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.files.disk.files.Lstat(user)
		treeGone := errors.Is(err, fs.ErrNotExist)
		r := e.record(t, user, "notes/a.txt")
		n, uerr := e.files.store.usage(user)
		if uerr != nil {
			t.Fatal(uerr)
		}
		if treeGone && r.Size == 0 && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("files of %s still there: tree gone %t, record %+v, usage %d", user, treeGone, r, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUploadOfDeletedAccountDoesNotCommit: an upload that was already
// streaming when its account was deleted must not land after the account's
// files were removed.
func TestUploadOfDeletedAccountDoesNotCommit(t *testing.T) {
	e := newTestEnv(t, 0)
	revoked := auth.NewRevocations()
	e.files.revoked = revoked
	if _, _, err := e.client.Upload(e.as(t, "id-bob"), "old.txt", strings.NewReader("old"), -1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	body, feed := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := e.client.Upload(e.as(t, "id-bob"), "late.txt", body, -1, UploadOptions{})
		done <- err
	}()
	if _, err := feed.Write([]byte("first half, ")); err != nil {
		t.Fatal(err)
	}

	remover := newAccountRemover(log.NewNopLogger(), e.files, revoked)
	actor := remover.actor()
	stopped := make(chan error, 1)
	go func() { stopped <- actor.Execute() }()
	defer func() { actor.Interrupt(nil); <-stopped }()
	revoked.Revoke(auth.Revocation{Subject: "id-bob", Deleted: true})
	waitGone(t, e, "id-bob")

	if _, err := feed.Write([]byte("second half")); err != nil {
		t.Fatal(err)
	}
	feed.Close()
	if err := <-done; !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("upload finished after the deletion: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := e.files.disk.files.Lstat("id-bob"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted account's tree came back: %v", err)
	}
	if r := e.record(t, "id-bob", "late.txt"); r.Size != 0 {
		t.Errorf("the late upload was recorded: %+v", r)
	}
}
