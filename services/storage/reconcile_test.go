package storage

import (
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// reconcile writes the metadata only when it differs from the files: a
// clean start commits nothing (no write, no sync), and anything off is
// still repaired.
func TestReconcileWritesOnlyWhatDiffers(t *testing.T) {
	rec := record{Size: 5, SHA256: "x", MTime: 1}
	tests := []struct {
		name      string
		setup     func(tx *bolt.Tx) error
		fixed     map[string]record
		found     []string
		wantWrite bool
		wantUsage map[string]int64
	}{
		{name: "empty", wantUsage: map[string]int64{}},
		{name: "consistent", setup: func(tx *bolt.Tx) error {
			if err := putTestRecord(tx, key("alice", "a.txt"), rec); err != nil {
				return err
			}
			return putUsage(tx, "alice", 5)
		}, found: []string{"alice\x00a.txt"}, wantUsage: map[string]int64{"alice": 5}},
		{name: "wrong usage", setup: func(tx *bolt.Tx) error {
			if err := putTestRecord(tx, key("alice", "a.txt"), rec); err != nil {
				return err
			}
			return putUsage(tx, "alice", 7)
		}, found: []string{"alice\x00a.txt"}, wantWrite: true, wantUsage: map[string]int64{"alice": 5}},
		{name: "usage of nobody", setup: func(tx *bolt.Tx) error {
			return putUsage(tx, "bob", 0)
		}, wantWrite: true, wantUsage: map[string]int64{}},
		{name: "file gone", setup: func(tx *bolt.Tx) error {
			if err := putTestRecord(tx, key("alice", "a.txt"), rec); err != nil {
				return err
			}
			return putUsage(tx, "alice", 5)
		}, wantWrite: true, wantUsage: map[string]int64{}},
		{name: "record to fix", fixed: map[string]record{"alice\x00a.txt": rec}, found: []string{"alice\x00a.txt"},
			wantWrite: true, wantUsage: map[string]int64{"alice": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := openStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			if tt.setup != nil {
				if err := st.db.Update(tt.setup); err != nil {
					t.Fatal(err)
				}
			}
			found := map[string]bool{}
			for _, k := range tt.found {
				found[k] = true
			}
			before := txID(t, st)
			if _, err := st.reconcile(tt.fixed, found); err != nil {
				t.Fatal(err)
			}
			if wrote := txID(t, st) != before; wrote != tt.wantWrite {
				t.Errorf("committed %v, want %v", wrote, tt.wantWrite)
			}
			got := map[string]int64{}
			err = st.db.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketUsage).ForEach(func(k, _ []byte) error {
					got[string(k)] = getUsage(tx, string(k))
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantUsage) {
				t.Fatalf("usage %v, want %v", got, tt.wantUsage)
			}
			for u, n := range tt.wantUsage {
				if got[u] != n {
					t.Errorf("usage %v, want %v", got, tt.wantUsage)
				}
			}
		})
	}
}

// txID is the id of the store's last committed transaction.
func txID(t *testing.T, st *store) int {
	t.Helper()
	var id int
	if err := st.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// putTestRecord stores r under k as the service would.
func putTestRecord(tx *bolt.Tx, k []byte, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketFiles).Put(k, v)
}
