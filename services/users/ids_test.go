package users

import (
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// An account stored before accounts had an id gets one when the store is
// opened, and a store whose accounts all have one is only read.
func TestOpenGivesIDsAndWritesOnlyThen(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	old := testRecord("old")
	old.ID = ""
	v, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUsers).Put([]byte(old.Username), v) }); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	st = openTestStore(t, dir)
	got, found, err := st.get("old")
	if err != nil || !found {
		t.Fatalf("get: found %v, err %v", found, err)
	}
	if got.ID == "" {
		t.Fatal("an account stored without an id still has none")
	}
	first := storeTxID(t, st)
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	st = openTestStore(t, dir)
	if again := storeTxID(t, st); again != first {
		t.Errorf("reopening a store with nothing to change committed (tx %d -> %d)", first, again)
	}
	if got2, _, _ := st.get("old"); got2.ID != got.ID {
		t.Errorf("id changed on reopening: %q -> %q", got.ID, got2.ID)
	}
}

// storeTxID is the id of the store's last committed transaction.
func storeTxID(t *testing.T, st *store) int {
	t.Helper()
	var id int
	if err := st.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}
