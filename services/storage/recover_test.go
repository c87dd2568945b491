package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	bolt "go.etcd.io/bbolt"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
)

func newTestKeys(t *testing.T) *auth.Keys {
	t.Helper()
	keys, err := auth.NewKeys(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestRunRecoversAfterACrash(t *testing.T) {
	dir := t.TempDir()
	cfg, env := testRunConfig(dir, log.NewNopLogger())
	s := servicetest.Start(t, cfg, env)
	c, alice := runClient(t, s, "alice")
	for p, data := range map[string]string{
		"keep.txt":     "kept as it is",
		"nometa.txt":   "its record is lost",
		"changed.txt":  "before the change",
		"gone.txt":     "removed behind the back",
		"dir/deep.txt": "deep",
	} {
		if _, _, err := c.Upload(alice, p, strings.NewReader(data), int64(len(data)), UploadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(t); err != nil {
		t.Fatal(err)
	}

	// What a crash, or a hand on the files, leaves behind.
	aliceRoot := filepath.Join(dir, "files", "alice")
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketFiles).Delete(key("alice", "nometa.txt")); err != nil {
			return err
		}
		return putUsage(tx, "alice", 123456) // a usage that is wrong
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "upload-HALFWAY"), []byte("half an upl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "odd-dir", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	changed := []byte("AFTER THE CHANGE!")
	if err := os.WriteFile(filepath.Join(aliceRoot, "changed.txt"), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(aliceRoot, "changed.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(aliceRoot, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(aliceRoot, "dir", "added.txt"), []byte("added by hand"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A fresh run repairs it all before it serves.
	var logs servicetest.Logs
	cfg, env = testRunConfig(dir, log.NewLogfmtLogger(&logs))
	s = servicetest.Start(t, cfg, env)
	if got := dirNames(t, filepath.Join(dir, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %v after the start", got)
	}
	for _, want := range []string{"leftover_uploads=2", "repaired=3", "dropped=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	c, alice = runClient(t, s, "alice")
	want := map[string]string{
		"keep.txt":      "kept as it is",
		"nometa.txt":    "its record is lost",
		"changed.txt":   string(changed),
		"dir/deep.txt":  "deep",
		"dir/added.txt": "added by hand",
	}
	var wantUsage int64
	for p, data := range want {
		wantUsage += int64(len(data))
		rc, info, err := c.Download(alice, p, "")
		if err != nil {
			t.Errorf("download %s: %v", p, err)
			continue
		}
		got := new(bytes.Buffer)
		_, _ = got.ReadFrom(rc)
		_ = rc.Close()
		if got.String() != data || info.File.ETag != etagOf([]byte(data)) {
			t.Errorf("%s = %q with etag %s, want %q with %s", p, got, info.File.ETag, data, etagOf([]byte(data)))
		}
	}
	for _, dir := range []string{"", "dir"} {
		listing, err := c.List(alice, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range listing.Entries {
			if en.Dir {
				continue
			}
			if data, ok := want[en.Path]; !ok || en.ETag != etagOf([]byte(data)) || en.Size != int64(len(data)) {
				t.Errorf("listing has %+v, want only the files on disk with their content's etag", en)
			}
		}
	}
	if _, _, err := c.Download(alice, "gone.txt", ""); err == nil {
		t.Error("gone.txt is still served")
	}
	if err := s.Stop(t); err != nil {
		t.Fatal(err)
	}

	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if _, found, _ := st.get("alice", "gone.txt"); found {
		t.Error("the record of gone.txt survived")
	}
	if used, err := st.usage("alice"); err != nil || used != wantUsage {
		t.Errorf("usage = (%d, %v), want %d", used, err, wantUsage)
	}
}

func TestRecoverIsIdempotent(t *testing.T) {
	e := newTestEnv(t, 0)
	e.upload(t, "alice", "a/b.txt", []byte("b"))
	e.upload(t, "bob", "c.txt", []byte("c"))
	for i := range 2 {
		rep, err := e.files.recover()
		if err != nil {
			t.Fatal(err)
		}
		if rep != (recovery{}) {
			t.Errorf("recovery %d of a clean state = %+v, want nothing to do", i, rep)
		}
	}
}
