package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// treeState is everything a client could see of the data dir, and what
// the metadata says: each file's content, each directory, each record and
// each user's usage.
type treeState struct {
	Files   map[string]string
	Dirs    []string
	Records map[string]record
	Usage   map[string]int64
}

func (e *testEnv) state(t *testing.T) treeState {
	t.Helper()
	s := treeState{Files: map[string]string{}, Records: map[string]record{}, Usage: map[string]int64{}}
	root := filepath.Join(e.dir, "files")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			s.Dirs = append(s.Dirs, rel)
			return nil
		}
		b, err := os.ReadFile(p)
		s.Files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.files.store.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			s.Records[strings.ReplaceAll(string(k), "\x00", "|")] = r
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			s.Usage[string(k)] = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inject makes step fail with err whenever it runs; every other step runs
// as usual.
func (e *testEnv) inject(s step, err error) {
	fail := func(at step) error {
		if at == s {
			return err
		}
		return nil
	}
	e.files.disk.faults, e.files.store.faults = fail, fail
}

// TestFailedWriteLeavesTreeAsItWas fails each step of the write path, for
// a new file (in directories that do not exist yet) and for a file being
// replaced, and checks that the tree and the metadata are exactly as
// before, that nothing is left in tmp/, and that a full disk is 507
// insufficient_storage without a server path in its message.
func TestFailedWriteLeavesTreeAsItWas(t *testing.T) {
	// A server path in an error, which must never reach the client.
	const secret = "/srv/secret/data/dir"
	errNoSpace := &os.PathError{Op: "write", Path: secret, Err: syscall.ENOSPC}
	errQuota := &os.PathError{Op: "write", Path: secret, Err: syscall.EDQUOT}
	errIO := &os.PathError{Op: "write", Path: secret, Err: syscall.EIO}
	// bbolt flattens the cause of a failure to grow its file into text.
	errGrow := fmt.Errorf("file resize error: %s", syscall.ENOSPC)

	const (
		newPath = "fresh/deep/new.txt"
		oldPath = "keep/old.txt"
	)
	for _, tc := range []struct {
		step       step
		path       string
		err        error
		wantStatus int
		wantReason string
	}{
		{stepCreate, newPath, errNoSpace, 507, "storage.no_space"},
		{stepCreate, oldPath, errIO, 500, "internal"},
		{stepWrite, newPath, errNoSpace, 507, "storage.no_space"},
		{stepWrite, oldPath, errQuota, 507, "storage.no_space"},
		{stepWrite, oldPath, errIO, 500, "internal"},
		{stepSync, newPath, errNoSpace, 507, "storage.no_space"},
		{stepSync, oldPath, errIO, 500, "internal"},
		{stepMkdir, newPath, errNoSpace, 507, "storage.no_space"},
		{stepMkdir, newPath, errIO, 500, "internal"},
		{stepKeep, oldPath, errNoSpace, 507, "storage.no_space"},
		{stepKeep, oldPath, errIO, 500, "internal"},
		{stepRename, newPath, errNoSpace, 507, "storage.no_space"},
		{stepRename, oldPath, errNoSpace, 507, "storage.no_space"},
		{stepRename, oldPath, errIO, 500, "internal"},
		{stepSyncDir, newPath, errIO, 500, "internal"},
		{stepSyncDir, oldPath, errNoSpace, 507, "storage.no_space"},
		{stepCommit, newPath, errNoSpace, 507, "storage.no_space"},
		{stepCommit, newPath, errGrow, 507, "storage.no_space"},
		{stepCommit, newPath, errIO, 500, "internal"},
		{stepCommit, oldPath, errNoSpace, 507, "storage.no_space"},
		{stepCommit, oldPath, errGrow, 507, "storage.no_space"},
		{stepCommit, oldPath, errIO, 500, "internal"},
	} {
		name := fmt.Sprintf("%s %s %s", tc.step, map[string]string{newPath: "new", oldPath: "overwrite"}[tc.path], tc.wantReason)
		if tc.err == errGrow {
			name += " (flattened)"
		}
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			e.upload(t, "alice", oldPath, []byte("the old content"))
			e.upload(t, "alice", "other.txt", []byte("other"))
			e.upload(t, "bob", oldPath, []byte("bob's"))
			before := e.state(t)

			e.inject(tc.step, tc.err)
			got := e.do(t, http.MethodPut, prefix+tc.path, "alice", strings.NewReader("the new content, longer"), nil)
			var eb struct {
				Error struct{ Code, Reason, Message string }
			}
			_ = json.Unmarshal(got.body, &eb)
			if got.status != tc.wantStatus || eb.Error.Reason != tc.wantReason {
				t.Errorf("PUT = %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantReason)
			}
			if strings.Contains(string(got.body), secret) {
				t.Errorf("the answer names a server path: %s", got.body)
			}
			if after := e.state(t); !reflect.DeepEqual(after, before) {
				t.Errorf("a failed write changed the data dir:\nbefore %+v\nafter  %+v", before, after)
			}
			if left := e.tmpEntries(t); len(left) != 0 {
				t.Errorf("tmp/ holds %v", left)
			}
			if body, _ := e.download(t, "alice", oldPath); string(body) != "the old content" {
				t.Errorf("GET %s = %q, want the old content", oldPath, body)
			}

			// The failure was one of the disk's, not the service's: the
			// same write goes through once the disk is well again.
			e.inject("", nil)
			want := []byte("the new content, longer")
			if fi := e.upload(t, "alice", tc.path, want); fi.ETag != etagOf(want) {
				t.Errorf("retried upload = %+v, want etag %s", fi, etagOf(want))
			}
			if body, _ := e.download(t, "alice", tc.path); !bytes.Equal(body, want) {
				t.Errorf("GET %s after the retry = %q, want %q", tc.path, body, want)
			}
		})
	}
}

// TestReadWithFullDisk checks that a file whose record must be redone is
// still served, and listed, when the disk has no room for the record.
func TestReadWithFullDisk(t *testing.T) {
	e := newTestEnv(t, 0)
	data := []byte("changed behind the service's back")
	e.upload(t, "alice", "f.txt", []byte("as uploaded"))
	name := filepath.Join(e.dir, "files", "alice", "f.txt")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e.inject(stepCommit, &os.PathError{Op: "write", Path: "meta.db", Err: syscall.ENOSPC})
	if l, err := e.client.List(e.as(t, "alice"), ""); err != nil || len(l.Entries) != 1 || l.Entries[0].ETag != etagOf(data) {
		t.Errorf("listing = (%+v, %v), want f.txt with etag %s", l, err, etagOf(data))
	}
	if body, info := e.download(t, "alice", "f.txt"); !bytes.Equal(body, data) || info.File.ETag != etagOf(data) {
		t.Errorf("GET = %q with etag %s, want %q with %s", body, info.File.ETag, data, etagOf(data))
	}
}

// TestNoSpace checks which errors are a full disk.
func TestNoSpace(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"ENOSPC", syscall.ENOSPC, true},
		{"EDQUOT", syscall.EDQUOT, true},
		{"wrapped", fmt.Errorf("write upload: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), true},
		{"EIO", syscall.EIO, false},
		{"other", errors.New("no space here"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := noSpace(tc.err); got != tc.want {
				t.Errorf("noSpace(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

// TestFailedDeleteLeavesTreeAsItWas: a delete whose record cannot be
// committed puts the file back; the client hears 507 on a full disk and
// 500 otherwise, and the file, its record and the usage are as before.
func TestFailedDeleteLeavesTreeAsItWas(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{name: "no space", err: &os.PathError{Op: "write", Path: "/srv/x", Err: syscall.ENOSPC}, wantStatus: http.StatusInsufficientStorage, wantCode: "insufficient_storage"},
		{name: "bbolt cannot grow", err: fmt.Errorf("file resize error: %s", syscall.ENOSPC), wantStatus: http.StatusInsufficientStorage, wantCode: "insufficient_storage"},
		{name: "input/output error", err: &os.PathError{Op: "write", Path: "/srv/x", Err: syscall.EIO}, wantStatus: http.StatusInternalServerError, wantCode: "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, 0)
			if got := e.do(t, http.MethodPut, "/api/v1/files/docs/a.txt", "alice", strings.NewReader("keep me"), nil); got.status != http.StatusCreated {
				t.Fatalf("upload: %d %s", got.status, got.body)
			}
			before := e.state(t)
			e.inject(stepCommit, tc.err)
			got := e.do(t, http.MethodDelete, "/api/v1/files/docs/a.txt", "alice", nil, nil)
			if got.status != tc.wantStatus || got.code() != tc.wantCode {
				t.Errorf("delete: %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantCode)
			}
			if after := e.state(t); !reflect.DeepEqual(after, before) {
				t.Errorf("a refused delete changed the tree:\nbefore %+v\nafter  %+v", before, after)
			}
			if left, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(left) != 0 {
				t.Errorf("tmp/ holds %v", left)
			}
			e.inject("", nil)
			if got := e.do(t, http.MethodDelete, "/api/v1/files/docs/a.txt", "alice", nil, nil); got.status != http.StatusNoContent {
				t.Errorf("delete once the disk has room: %d %s", got.status, got.body)
			}
			if left, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(left) != 0 {
				t.Errorf("tmp/ holds %v after a delete", left)
			}
		})
	}
}
