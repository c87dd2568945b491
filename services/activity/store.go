package activity

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ocis-runtime/ocis/pkg/buckets"
	"github.com/ocis-runtime/ocis/pkg/events"
)

// The buckets of the store.
var (
	// bucketLogs holds one nested bucket per account id: its log, keyed
	// by entryKey, valued by the Activity as JSON.
	bucketLogs = []byte("logs")
	// bucketDeleted holds a tombstone per deleted account id (the
	// deletion's time, RFC 3339): events about it that arrive later, a
	// redelivery or one published just before the deletion, are
	// dropped instead of starting its log again.
	bucketDeleted = []byte("deleted")
)

// ledgerBucket remembers the ids of handled events (events.Ledger), so a
// redelivered event never makes a second entry.
const ledgerBucket = "events-handled"

// keepMarks is how long handled-event marks and tombstones are kept: as
// long as the stream keeps events, plus an hour of clock skew between
// nodes. No event older than that can be delivered again.
const keepMarks = events.DefaultMaxAge + time.Hour

// store is the activity logs in one bbolt file.
type store struct {
	db     *bolt.DB
	ledger events.Ledger
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "activity.db")
	// The timeout turns a second process on the same file into an error
	// instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := buckets.Ensure(db, bucketLogs, bucketDeleted); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &store{db: db, ledger: events.NewLedger(ledgerBucket)}, nil
}

func (s *store) close() error { return s.db.Close() }

// target is the part of a user.* payload that names the account the
// event is about.
type target struct {
	UserID string `json:"user_id"`
}

// apply is the consumer's handler: it records ev in the logs it belongs
// to, once. The mark and the effect commit in one transaction, so a
// redelivery after a crash finds both or neither.
//
// An event goes to its actor's log and, when its payload names an
// account (user_id) other than the actor, to that account's log too: an
// admin who creates bob sees it, and so does bob. user.deleted instead
// removes the deleted account's log and leaves a tombstone.
func (s *store) apply(_ context.Context, ev events.Event) error {
	var about target
	if len(ev.Payload) > 0 {
		// A payload without user_id, or not an object, names no one.
		_ = json.Unmarshal(ev.Payload, &about)
	}
	entry, err := json.Marshal(activityOf(ev))
	if err != nil {
		return events.Permanent(err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		first, err := s.ledger.Mark(tx, ev)
		if err != nil || !first {
			return err
		}
		logs, deleted := tx.Bucket(bucketLogs), tx.Bucket(bucketDeleted)
		if ev.Type == TypeUserDeleted && about.UserID != "" {
			if err := logs.DeleteBucket([]byte(about.UserID)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			if err := deleted.Put([]byte(about.UserID), []byte(ev.Time.UTC().Format(time.RFC3339Nano))); err != nil {
				return err
			}
		}
		for _, user := range recipients(ev, about) {
			if deleted.Get([]byte(user)) != nil {
				continue
			}
			log, err := logs.CreateBucketIfNotExists([]byte(user))
			if err != nil {
				return err
			}
			if err := log.Put(entryKey(ev), entry); err != nil {
				return err
			}
		}
		return nil
	})
}

// recipients are the accounts whose logs ev goes to.
func recipients(ev events.Event, about target) []string {
	var out []string
	if ev.Actor != "" {
		out = append(out, ev.Actor)
	}
	if about.UserID != "" && about.UserID != ev.Actor && ev.Type != TypeUserDeleted {
		out = append(out, about.UserID)
	}
	return out
}

// entryKey orders a log by the event's time, then its id: the time in
// nanoseconds, big-endian, so that bbolt's byte order is time order.
func entryKey(ev events.Event) []byte {
	key := make([]byte, 8+len(ev.ID))
	binary.BigEndian.PutUint64(key, uint64(ev.Time.UnixNano()))
	copy(key[8:], ev.ID)
	return key
}

// page returns up to limit entries of user's log older than the entry at
// before (from the newest when before is nil), newest first, and the key
// to continue from, nil when there is nothing older.
func (s *store) page(user string, limit int, before []byte) ([]Activity, []byte, error) {
	out := []Activity{}
	var next []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketLogs).Bucket([]byte(user))
		if log == nil {
			return nil
		}
		c := log.Cursor()
		var k, v []byte
		if before == nil {
			k, v = c.Last()
		} else {
			// Seek finds the first key at or after before; the page
			// begins with the one strictly before it.
			k, v = c.Seek(before)
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && bytes.Compare(k, before) >= 0 {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if len(out) == limit {
				next = bytes.Clone(out[len(out)-1].key)
				return nil
			}
			var a Activity
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("read activity of %s: %w", user, err)
			}
			a.key = bytes.Clone(k)
			out = append(out, a)
		}
		return nil
	})
	return out, next, err
}

// prune forgets handled-event marks and tombstones older than keepMarks
// before now; no delivery can need them any more.
func (s *store) prune(now time.Time) (marks, tombstones int, err error) {
	before := now.Add(-keepMarks)
	err = s.db.Update(func(tx *bolt.Tx) error {
		marks, err = s.ledger.Prune(tx, before)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketDeleted)
		var old [][]byte
		err = b.ForEach(func(k, v []byte) error {
			at, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil || at.Before(before) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		tombstones = len(old)
		return nil
	})
	return marks, tombstones, err
}
