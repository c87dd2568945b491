package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCachedTokenChecks checks that a token verified once and then taken
// from the cache is still refused at its exact expiry, after a revocation,
// and that another token (one byte changed) is no hit.
func TestCachedTokenChecks(t *testing.T) {
	c := &clock{t: start}
	k := newTestKeys(t, testSecret, c)
	revs := NewRevocations()
	k.CheckRevocations(revs)
	token, expires, err := k.Sign(Identity{ID: "id-alice", Name: "alice", Gen: 1}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, err := k.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.cache.len(); got != 1 {
		t.Fatalf("cache holds %d tokens after one verification, want 1", got)
	}
	second, err := k.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("the second verification did not come from the cache")
	}

	// A forged signature is not the cached token.
	forged := token[:len(token)-2] + "xx"
	if _, err := k.Verify(forged); err == nil {
		t.Error("a token with a changed signature passed")
	}

	// Revoked while cached: refused on the next call.
	revs.Revoke(Revocation{Subject: "id-alice", MinGen: 2})
	if _, err := k.Verify(token); !errors.Is(err, ErrTokenRevoked) {
		t.Errorf("Verify of a cached, revoked token: err = %v, want %v", err, ErrTokenRevoked)
	}

	// Expiry is exact on a hit: valid a nanosecond before, not at.
	other, _, err := k.Sign(Identity{ID: "id-bob", Name: "bob", Gen: 1}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherExp := start.Add(time.Hour)
	if !otherExp.Equal(expires) {
		t.Fatalf("expiry %v, want %v", otherExp, expires)
	}
	if _, err := k.Verify(other); err != nil {
		t.Fatal(err)
	}
	c.t = otherExp.Add(-time.Nanosecond)
	if _, err := k.Verify(other); err != nil {
		t.Errorf("cached token a nanosecond before its expiry: %v", err)
	}
	c.t = otherExp
	if _, err := k.Verify(other); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("cached token at its expiry: err = %v, want %v", err, ErrTokenExpired)
	}
	if k.cache.get(other) != nil {
		t.Error("an expired token stays in the cache")
	}
}

// TestCacheBounded checks that the cache never holds more than its size,
// and that expired tokens go first.
func TestCacheBounded(t *testing.T) {
	c := &clock{t: start}
	k := newTestKeys(t, testSecret, c)
	k.cache = newVerified(8)
	short, _, err := k.Sign(Identity{ID: "id-short", Name: "short"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(short); err != nil {
		t.Fatal(err)
	}
	c.t = start.Add(2 * time.Minute) // short has expired, but is still held
	for i := range 20 {
		token, _, err := k.Sign(Identity{ID: fmt.Sprintf("id-%d", i), Name: fmt.Sprintf("user%d", i)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Verify(token); err != nil {
			t.Fatal(err)
		}
		if got := k.cache.len(); got > 8 {
			t.Fatalf("cache holds %d tokens, want at most 8", got)
		}
	}
	if k.cache.get(short) != nil {
		t.Error("the expired token survived a full cache")
	}
}

func BenchmarkVerify(b *testing.B) {
	k, err := NewKeys(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := k.Sign(Identity{ID: "id-alice", Name: "alice"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.cache.drop(token)
			if _, err := k.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
