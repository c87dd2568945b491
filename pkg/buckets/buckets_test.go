package buckets_test

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ocis-runtime/ocis/pkg/buckets"
)

func TestEnsure(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := []byte("a"), []byte("b")
	for _, tt := range []struct {
		name      string
		ensure    [][]byte
		wantWrite bool
	}{
		{name: "fresh store", ensure: [][]byte{a}, wantWrite: true},
		{name: "all there", ensure: [][]byte{a}, wantWrite: false},
		{name: "one missing", ensure: [][]byte{a, b}, wantWrite: true},
		{name: "all there again", ensure: [][]byte{a, b}, wantWrite: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := txID(t, db)
			if err := buckets.Ensure(db, tt.ensure...); err != nil {
				t.Fatal(err)
			}
			if wrote := txID(t, db) != before; wrote != tt.wantWrite {
				t.Errorf("committed %v, want %v", wrote, tt.wantWrite)
			}
			err := db.View(func(tx *bolt.Tx) error {
				for _, n := range tt.ensure {
					if tx.Bucket(n) == nil {
						t.Errorf("bucket %s missing", n)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// txID is the id of the last committed transaction of db.
func txID(t *testing.T, db *bolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}
