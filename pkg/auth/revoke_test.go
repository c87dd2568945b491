package auth

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRevocationsMerge(t *testing.T) {
	r := NewRevocations()
	var told []Revocation
	cancel := r.Subscribe(func(rev Revocation) { told = append(told, rev) })
	defer cancel()

	// The steps run in order on one list; each says which generations of
	// "a" are refused afterwards and whether subscribers heard of it.
	for _, tc := range []struct {
		name        string
		rev         Revocation
		wantRevoked map[uint64]bool
		wantTold    bool
	}{
		{name: "raise to 3", rev: Revocation{Subject: "a", MinGen: 3}, wantRevoked: map[uint64]bool{1: true, 2: true, 3: false, 4: false}, wantTold: true},
		{name: "a lower generation changes nothing", rev: Revocation{Subject: "a", MinGen: 2}, wantRevoked: map[uint64]bool{2: true, 3: false}, wantTold: false},
		{name: "the same again changes nothing", rev: Revocation{Subject: "a", MinGen: 3}, wantRevoked: map[uint64]bool{2: true, 3: false}, wantTold: false},
		{name: "deletion refuses every generation", rev: Revocation{Subject: "a", Deleted: true}, wantRevoked: map[uint64]bool{3: true, 1 << 62: true}, wantTold: true},
		{name: "a deletion stays", rev: Revocation{Subject: "a", MinGen: 9}, wantRevoked: map[uint64]bool{10: true}, wantTold: false},
	} {
		before := len(told)
		r.Revoke(tc.rev)
		for gen, want := range tc.wantRevoked {
			if got := r.Revoked("a", gen); got != want {
				t.Errorf("%s: Revoked(a, %d) = %t, want %t", tc.name, gen, got, want)
			}
		}
		if got := len(told) > before; got != tc.wantTold {
			t.Errorf("%s: subscribers told = %t, want %t", tc.name, got, tc.wantTold)
		}
	}
	if r.Revoked("b", 1) {
		t.Error("an unknown subject is revoked")
	}
	var nilList *Revocations
	if nilList.Revoked("a", 0) {
		t.Error("a nil list revokes")
	}
}

func TestSubscribeReplaysKnown(t *testing.T) {
	r := NewRevocations()
	r.Revoke(Revocation{Subject: "gone", Deleted: true})
	r.Revoke(Revocation{Subject: "old", MinGen: 2})
	var got []string
	cancel := r.Subscribe(func(rev Revocation) { got = append(got, rev.Subject) })
	slices.Sort(got)
	if want := []string{"gone", "old"}; !slices.Equal(got, want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
	cancel()
	r.Revoke(Revocation{Subject: "later", Deleted: true})
	if len(got) != 2 {
		t.Errorf("a cancelled subscriber heard %v", got[2:])
	}
}

func TestVerifyRefusesRevoked(t *testing.T) {
	c := &clock{t: start}
	r := NewRevocations()
	k := newTestKeys(t, testSecret, c).CheckRevocations(r)
	sign := func(gen uint64) string {
		t.Helper()
		token, _, err := k.Sign(Identity{ID: "id-a", Name: "alice", Gen: gen}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	gen1, gen2 := sign(1), sign(2)
	r.Revoke(Revocation{Subject: "id-a", MinGen: 2})
	if _, err := k.Verify(gen1); !errors.Is(err, ErrTokenRevoked) {
		t.Errorf("generation 1 after raising to 2: err = %v, want %v", err, ErrTokenRevoked)
	}
	if _, err := k.Verify(gen2); err != nil {
		t.Errorf("generation 2 after raising to 2: %v", err)
	}
	r.Revoke(Revocation{Subject: "id-a", Deleted: true})
	if _, err := k.Verify(gen2); !errors.Is(err, ErrTokenRevoked) {
		t.Errorf("after deletion: err = %v, want %v", err, ErrTokenRevoked)
	}
}

// TestRevocationsShareAFile: two processes of one machine (two lists on
// one file) see each other's deletions within a refresh, and a list that
// starts later reads them at once.
func TestRevocationsShareAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations.json")
	users, storage := NewRevocations(), NewRevocations()
	for _, r := range []*Revocations{users, storage} {
		if err := r.UseFile(path); err != nil {
			t.Fatalf("a missing file is no error: %v", err)
		}
	}
	users.Revoke(Revocation{Subject: "id-bob", Deleted: true})
	if err := users.Save(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * refreshEvery)
	for !storage.Deleted("id-bob") {
		if time.Now().After(deadline) {
			t.Fatalf("the other list did not see the deletion within %s", 3*refreshEvery)
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := NewRevocations()
	if err := later.UseFile(path); err != nil {
		t.Fatal(err)
	}
	if !later.Revoked("id-bob", 1) {
		t.Error("a list started after the save does not refuse the deleted account")
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewRevocations().UseFile(path); err == nil {
		t.Error("a broken file was accepted: a service would serve without its revocations")
	}
}

// TestSaveWritesOnlyAChange: a save that would write what the file holds
// already, or an empty list where there is no file, leaves the file alone;
// a change is written.
func TestSaveWritesOnlyAChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations.json")
	r := NewRevocations()
	if err := r.UseFile(path); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an empty list made a file (stat: %v)", err)
	}
	r.Revoke(Revocation{Subject: "id-bob", MinGen: 2})
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	first, err := os.Stat(path)
	if err != nil {
		t.Fatalf("a change was not written: %v", err)
	}
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The atomic write replaces the file: the same inode means no write.
	if !os.SameFile(first, again) {
		t.Error("saving an unchanged list wrote the file again")
	}
	r.Revoke(Revocation{Subject: "id-eve", Deleted: true})
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	if got, want := revocationsIn(t, path), 2; got != want {
		t.Errorf("the file holds %d revocations after a change, want %d", got, want)
	}
}

// revocationsIn counts the revocations a fresh list reads from path.
func revocationsIn(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var list []Revocation
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	return len(list)
}
