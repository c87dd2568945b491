package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/buckets"
)

var (
	// bucketFiles maps user + "\x00" + path to a record.
	bucketFiles = []byte("files")
	// bucketUsage maps a user to the bytes of their files, big-endian.
	bucketUsage = []byte("usage")
)

// record is what the service knows of a file beyond the file itself. Size
// and MTime are the file's fingerprint: when they disagree with the file,
// the file changed behind the service's back and the hash is redone.
type record struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	MTime  int64  `json:"mtime_ns"`
}

func (r record) info(p string) FileInfo {
	return FileInfo{Path: p, Size: r.Size, ETag: `"` + r.SHA256 + `"`, MTime: time.Unix(0, r.MTime).UTC()}
}

// matches reports whether r still describes the file st.
func (r record) matches(st fs.FileInfo) bool {
	return r.Size == st.Size() && r.MTime == st.ModTime().UnixNano()
}

// key is the record key of p in user's tree. Neither a user nor a path can
// hold a NUL, so keys never collide and a user's keys share a prefix.
func key(user, p string) []byte {
	return []byte(user + "\x00" + p)
}

// store keeps the metadata in a bbolt file.
type store struct {
	db *bolt.DB
	// faults fails the commit in tests; nil in service.
	faults faults
}

// errOverQuota means a put would take its user past the quota.
var errOverQuota = errors.New("over quota")

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "meta.db")
	// The timeout turns a file still locked by a previous instance into an
	// error the supervisor retries, instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	if err := buckets.Ensure(db, bucketFiles, bucketUsage); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init metadata %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) get(user, p string) (record, bool, error) {
	var (
		r     record
		found bool
		err   error
	)
	err = s.db.View(func(tx *bolt.Tx) error {
		r, found, err = getRecord(tx, key(user, p))
		return err
	})
	if err != nil {
		return record{}, false, fmt.Errorf("read metadata of %s: %w", quote(p), err)
	}
	return r, found, nil
}

// usage returns the bytes of user's files.
func (s *store) usage(user string) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = getUsage(tx, user)
		return nil
	})
	return n, err
}

// put records r for p in user's tree. When quota is positive, the user's
// files may not pass it: errOverQuota. place, when given, is the change on
// disk that the record describes; it runs inside the transaction, after
// the quota check, and returns how to take the change back. When the
// transaction fails after place succeeded, the change is taken back, so
// that either both the change and its record happen or neither does.
func (s *store) put(user, p string, r record, quota int64, place func() (undo func() error, err error)) error {
	var undo func() error
	err := s.db.Update(func(tx *bolt.Tx) error {
		k := key(user, p)
		old, _, err := getRecord(tx, k)
		if err != nil {
			return err
		}
		used := getUsage(tx, user) - old.Size + r.Size
		if quota > 0 && used > quota {
			return errOverQuota
		}
		if place != nil {
			if undo, err = place(); err != nil {
				return err
			}
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketFiles).Put(k, v); err != nil {
			return err
		}
		if err := putUsage(tx, user, used); err != nil {
			return err
		}
		return s.faults.at(stepCommit)
	})
	if err != nil && undo != nil {
		if uerr := undo(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("take back the change on disk: %w", uerr))
		}
	}
	var kind *apierr.Error
	switch {
	case err == nil || errors.Is(err, errOverQuota) || errors.As(err, &kind):
		return err // an answer already, from place
	case noSpace(err) || flatNoSpace(err):
		return fmt.Errorf("%w: recording the metadata of %s", ErrNoSpace, quote(p))
	}
	return fmt.Errorf("record %s: %w", quote(p), err)
}

// flatNoSpace reports whether a bbolt error says the disk is full though
// the errno is lost: bbolt flattens the cause of a failure to grow its file
// into text ("file resize error: %s"), so the errno's own text is all that
// is left of it.
func flatNoSpace(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// remove drops the record of p in user's tree together with unlink, the
// change on disk, which runs inside the transaction and returns its undo:
// when the commit fails after it, the file is put back, so a delete that
// was refused changed nothing.
func (s *store) remove(user, p string, unlink func() (undo func() error, err error)) error {
	var undo func() error
	err := s.db.Update(func(tx *bolt.Tx) error {
		k := key(user, p)
		old, found, err := getRecord(tx, k)
		if err != nil {
			return err
		}
		if undo, err = unlink(); err != nil {
			return err
		}
		if found {
			if err := tx.Bucket(bucketFiles).Delete(k); err != nil {
				return err
			}
			if err := putUsage(tx, user, getUsage(tx, user)-old.Size); err != nil {
				return err
			}
		}
		return s.faults.at(stepCommit)
	})
	if err != nil && undo != nil {
		if uerr := undo(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("take back the delete on disk: %w", uerr))
		}
	}
	var kind *apierr.Error
	switch {
	case err == nil || errors.As(err, &kind):
		return err
	case noSpace(err) || flatNoSpace(err):
		return fmt.Errorf("%w: recording the delete of %s", ErrNoSpace, quote(p))
	}
	return fmt.Errorf("delete %s: %w", quote(p), err)
}

// reconcile makes the metadata agree with what recovery found on disk:
// fixed holds the records to write, found the key of every file there is.
// Every other record is dropped and the usage of every user recounted. It
// returns how many records it dropped.
func (s *store) reconcile(fixed map[string]record, found map[string]bool) (int, error) {
	// Most starts find the metadata as the files are: it is checked
	// first, and written only when something differs, so that a clean
	// start commits (and syncs) nothing, on a path every request waits
	// for.
	var clean bool
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		clean, err = consistent(tx, fixed, found)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reconcile metadata: %w", err)
	}
	if clean {
		return 0, nil
	}
	var dropped int
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiles)
		var stale [][]byte
		err := b.ForEach(func(k, _ []byte) error {
			if !found[string(k)] {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		dropped = len(stale)
		for k, r := range fixed {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}

		usage, err := usageOf(b, nil)
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketUsage); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketUsage); err != nil {
			return err
		}
		for user, n := range usage {
			if err := putUsage(tx, user, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reconcile metadata: %w", err)
	}
	return dropped, nil
}

// consistent reports whether reconcile would change nothing: no record to
// fix, none of a file that is gone, and every user's recorded usage (and
// no other) the sum of that user's records.
func consistent(tx *bolt.Tx, fixed map[string]record, found map[string]bool) (bool, error) {
	if len(fixed) > 0 {
		return false, nil
	}
	clean := true
	usage, err := usageOf(tx.Bucket(bucketFiles), func(k []byte) bool {
		if !found[string(k)] {
			clean = false
		}
		return clean
	})
	if err != nil || !clean {
		return false, err
	}
	recorded := 0
	err = tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
		recorded++
		if n, ok := usage[string(k)]; !ok || len(v) != 8 || int64(binary.BigEndian.Uint64(v)) != n {
			clean = false
		}
		return nil
	})
	return clean && recorded == len(usage), err
}

// usageOf sums the sizes of the records in files per user, over the keys
// keep accepts (all when keep is nil); once keep refuses one, the rest are
// not read.
func usageOf(files *bolt.Bucket, keep func(k []byte) bool) (map[string]int64, error) {
	usage := map[string]int64{}
	c := files.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if keep != nil && !keep(k) {
			break
		}
		user, _, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return nil, fmt.Errorf("metadata key %q has no user", k)
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("metadata of %q: %w", k, err)
		}
		usage[string(user)] += r.Size
	}
	return usage, nil
}

func getRecord(tx *bolt.Tx, k []byte) (record, bool, error) {
	v := tx.Bucket(bucketFiles).Get(k)
	if v == nil {
		return record{}, false, nil
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, false, err
	}
	return r, true, nil
}

func getUsage(tx *bolt.Tx, user string) int64 {
	v := tx.Bucket(bucketUsage).Get([]byte(user))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putUsage(tx *bolt.Tx, user string, n int64) error {
	return tx.Bucket(bucketUsage).Put([]byte(user), binary.BigEndian.AppendUint64(nil, uint64(n)))
}
