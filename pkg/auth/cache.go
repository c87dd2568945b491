package auth

import (
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a Keys remembers.
const DefaultCacheSize = 4096

// verified remembers tokens whose signature, algorithm, issuer and subject
// were checked, so that a token presented again (on every request of a
// session, and twice per request behind the proxy) costs a map lookup, not
// an HMAC and a JSON parse. What can change after the first check is
// checked on every hit all the same: the expiry, exactly, against the
// keys' clock, and the revocation list. Only successes are remembered.
type verified struct {
	mu    sync.RWMutex
	max   int
	byTok map[string]*Claims
}

func newVerified(max int) *verified {
	return &verified{max: max, byTok: make(map[string]*Claims, min(max, 256))}
}

// get returns the claims of a token verified before, or nil.
func (v *verified) get(token string) *Claims {
	if v == nil {
		return nil
	}
	v.mu.RLock()
	c := v.byTok[token]
	v.mu.RUnlock()
	return c
}

// put remembers the claims of a token that passed every check at now. A
// full cache first drops the tokens expired by now and, when that frees
// nothing, one entry it happens to meet first (Go's map iteration starts
// at random), so the cache stays bounded whatever tokens come.
func (v *verified) put(token string, c *Claims, now time.Time) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.byTok) >= v.max {
		for t, old := range v.byTok {
			if old.ExpiresAt == nil || !now.Before(old.ExpiresAt.Time) {
				delete(v.byTok, t)
			}
		}
		for t := range v.byTok {
			if len(v.byTok) < v.max {
				break
			}
			delete(v.byTok, t)
		}
	}
	v.byTok[token] = c
}

// drop forgets a token, once it has expired.
func (v *verified) drop(token string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	delete(v.byTok, token)
	v.mu.Unlock()
}

// len is how many tokens are remembered, for tests.
func (v *verified) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byTok)
}
