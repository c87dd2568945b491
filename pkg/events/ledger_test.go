package events

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var errRollback = errors.New("roll back")

func TestLedger(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := NewLedger("handled")
	now := time.Now()
	old := Event{ID: NewID(), Type: "file.written", Time: now.Add(-48 * time.Hour)}
	fresh := Event{ID: NewID(), Type: "file.written", Time: now}

	for i, want := range []bool{true, false} {
		err := db.Update(func(tx *bolt.Tx) error {
			for _, ev := range []Event{old, fresh} {
				got, err := l.Mark(tx, ev)
				if err != nil {
					return err
				}
				if got != want {
					t.Errorf("round %d: Mark(%s) = %v, want %v", i, ev.ID, got, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A mark rolled back with its transaction is not kept: the effect and
	// the mark go together.
	rolledBack := Event{ID: NewID(), Type: "file.deleted", Time: now}
	_ = db.Update(func(tx *bolt.Tx) error {
		_, _ = l.Mark(tx, rolledBack)
		return errRollback
	})
	_ = db.View(func(tx *bolt.Tx) error {
		if l.Seen(tx, rolledBack) {
			t.Error("a rolled back mark was kept")
		}
		if !l.Seen(tx, fresh) {
			t.Error("a committed mark was lost")
		}
		return nil
	})

	err = db.Update(func(tx *bolt.Tx) error {
		n, err := l.Prune(tx, now.Add(-24*time.Hour))
		if n != 1 {
			t.Errorf("Prune removed %d, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if l.Seen(tx, old) || !l.Seen(tx, fresh) {
			t.Error("Prune removed the wrong marks")
		}
		return nil
	})
}
