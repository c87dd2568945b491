package events

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ledger remembers which events a consumer has handled, in a bucket of
// the consumer's own bbolt store. Mark it in the same write transaction
// that applies the event's effect: the effect and the mark then commit
// together or not at all, so a redelivery after a crash finds either both
// (and is skipped) or neither (and is applied). A separate "seen" store
// could not promise that: marked before the effect, a crash loses the
// event; marked after, a crash applies it twice.
//
// Keys are the event's time then its id, so Prune drops the old ones
// with one cursor walk. Keep marks at least as long as the stream keeps
// events (StreamConfig.MaxAge), plus the clock skew between nodes: no
// older event can be delivered again.
type Ledger struct {
	bucket []byte
}

// NewLedger returns a ledger in the named bucket.
func NewLedger(bucket string) Ledger { return Ledger{bucket: []byte(bucket)} }

// Mark records ev as handled and reports whether this was the first time.
// tx must be writable. On false, skip the effect and let the handler
// succeed: the event was handled before.
func (l Ledger) Mark(tx *bolt.Tx, ev Event) (first bool, err error) {
	if ev.ID == "" {
		return false, errors.New("event without id")
	}
	b, err := tx.CreateBucketIfNotExists(l.bucket)
	if err != nil {
		return false, err
	}
	key := ledgerKey(ev)
	if b.Get(key) != nil {
		return false, nil
	}
	return true, b.Put(key, []byte{})
}

// Seen reports whether ev was marked; any transaction will do.
func (l Ledger) Seen(tx *bolt.Tx, ev Event) bool {
	b := tx.Bucket(l.bucket)
	return b != nil && b.Get(ledgerKey(ev)) != nil
}

// Prune forgets the events that happened before before, and returns how
// many. tx must be writable.
func (l Ledger) Prune(tx *bolt.Tx, before time.Time) (int, error) {
	b := tx.Bucket(l.bucket)
	if b == nil {
		return 0, nil
	}
	var limit [8]byte
	binary.BigEndian.PutUint64(limit[:], uint64(before.UnixNano()))
	// Keys are collected first: deleting under a cursor can make it skip
	// the key after.
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:min(8, len(k))], limit[:]) < 0; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for i, k := range old {
		if err := b.Delete(k); err != nil {
			return i, err
		}
	}
	return len(old), nil
}

// ledgerKey is the event's time in nanoseconds, big-endian so that keys
// sort by time, then its id.
func ledgerKey(ev Event) []byte {
	key := make([]byte, 8+len(ev.ID))
	binary.BigEndian.PutUint64(key, uint64(ev.Time.UnixNano()))
	copy(key[8:], ev.ID)
	return key
}
