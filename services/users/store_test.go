package users

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// openTestStore opens a store in dir and closes it when the test ends;
// closing twice is harmless, so tests may also close it themselves.
func openTestStore(t *testing.T, dir string) *store {
	t.Helper()
	st, err := openStore(dir)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.close() })
	return st
}

func testRecord(name string) record {
	return record{
		ID:           "id-of-" + name,
		Gen:          1,
		Username:     name,
		DisplayName:  "The " + name,
		Admin:        name == "admin",
		CreatedAt:    time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		PasswordHash: []byte("hash-of-" + name),
	}
}

func names(records []record) []string {
	out := []string{}
	for _, r := range records {
		out = append(out, r.Username)
	}
	return out
}

func TestStoreCreateGetListRemove(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	// Created out of order, so that a sorted list proves the sorting.
	for _, name := range []string{"carol", "admin", "bob", "alice"} {
		if err := st.create(testRecord(name)); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	t.Run("get", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			wantFound bool
		}{
			{name: "alice", wantFound: true},
			{name: "admin", wantFound: true},
			{name: "nobody", wantFound: false},
			{name: "", wantFound: false},
			{name: "ali", wantFound: false}, // a prefix of a stored key
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, found, err := st.get(tc.name)
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				if found != tc.wantFound {
					t.Fatalf("found = %v, want %v", found, tc.wantFound)
				}
				want := record{}
				if tc.wantFound {
					want = testRecord(tc.name)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			})
		}
	})

	t.Run("list is sorted", func(t *testing.T) {
		got, err := st.list()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"admin", "alice", "bob", "carol"}; !reflect.DeepEqual(names(got), want) {
			t.Errorf("list = %v, want %v", names(got), want)
		}
		for _, r := range got {
			if want := testRecord(r.Username); !reflect.DeepEqual(r, want) {
				t.Errorf("listed %+v, want %+v", r, want)
			}
		}
	})

	t.Run("remove", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			wantExisted bool
			wantLeft    []string
		}{
			{name: "bob", wantExisted: true, wantLeft: []string{"admin", "alice", "carol"}},
			{name: "bob", wantExisted: false, wantLeft: []string{"admin", "alice", "carol"}},
			{name: "nobody", wantExisted: false, wantLeft: []string{"admin", "alice", "carol"}},
			{name: "alice", wantExisted: true, wantLeft: []string{"admin", "carol"}},
		} {
			removed, existed, err := st.remove(tc.name)
			if err != nil {
				t.Fatalf("remove %s: %v", tc.name, err)
			}
			if existed != tc.wantExisted {
				t.Errorf("remove %s: existed = %v, want %v", tc.name, existed, tc.wantExisted)
			}
			if existed && (removed.Username != tc.name || removed.ID == "") {
				t.Errorf("remove %s: removed %+v, want that account with its id", tc.name, removed)
			}
			got, err := st.list()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tc.wantLeft) {
				t.Errorf("after remove %s: list = %v, want %v", tc.name, names(got), tc.wantLeft)
			}
		}
	})
}

func TestStoreEmptyList(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	got, err := st.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("list of a new store = %v, want none", names(got))
	}
}

func TestStoreCreateDuplicate(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	want := testRecord("alice")
	if err := st.create(want); err != nil {
		t.Fatal(err)
	}

	second := testRecord("alice")
	second.DisplayName = "Impostor"
	second.PasswordHash = []byte("other hash")
	if err := st.create(second); !errors.Is(err, errExists) {
		t.Fatalf("second create: err = %v, want errExists", err)
	}

	// The first record is untouched.
	got, found, err := st.get("alice")
	if err != nil || !found {
		t.Fatalf("get: found = %v, err = %v", found, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestStoreReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "alice"} {
		if err := st.create(testRecord(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	st = openTestStore(t, dir)
	got, err := st.list()
	if err != nil {
		t.Fatal(err)
	}
	want := []record{testRecord("alice"), testRecord("bob")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen: got %+v, want %+v", got, want)
	}
	// Reopening keeps the file writable and the uniqueness check working.
	if err := st.create(testRecord("alice")); !errors.Is(err, errExists) {
		t.Errorf("create after reopen: err = %v, want errExists", err)
	}
}

func TestStoreCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "users")
	openTestStore(t, dir)

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The directory holds password hashes: only the owner may enter it.
	if got, want := info.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Errorf("data dir mode = %v, want %v", got, want)
	}
	info, err = os.Stat(filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("store file mode = %v, want %v", got, want)
	}
}

func TestStoreSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	first, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.close() })

	// A second instance on the same file must give up after the lock
	// timeout instead of hanging; the bound is generous for slow machines.
	start := time.Now()
	second, err := openStore(dir)
	took := time.Since(start)
	if err == nil {
		_ = second.close()
		t.Fatal("second open succeeded while the first holds the lock")
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("second open: err = %v, want bbolt's lock timeout", err)
	}
	if took > 5*time.Second {
		t.Errorf("second open took %s, want about one second", took)
	}

	// Once the first closes, the lock is free again.
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	openTestStore(t, dir)
}
