package auth

import (
	"math"
	"sync"
)

// Revocation withdraws tokens of one account: those issued before
// generation MinGen. A deleted account has every generation withdrawn.
type Revocation struct {
	Subject string `json:"sub"`
	MinGen  uint64 `json:"min_gen"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Revocations is the list of withdrawn tokens that every service of a
// process checks on every request. The users service fills it (from its
// store at start, and on every deletion); others subscribe to act on a
// deletion, as storage does by removing the account's files.
type Revocations struct {
	mu    sync.RWMutex
	bySub map[string]Revocation
	subs  map[int]func(Revocation)
	next  int
}

// NewRevocations returns an empty list.
func NewRevocations() *Revocations {
	return &Revocations{bySub: map[string]Revocation{}, subs: map[int]func(Revocation){}}
}

// Revoke records rev, merged with what is known of its subject (the
// highest generation wins, a deletion stays), and tells subscribers when
// that changed anything.
func (r *Revocations) Revoke(rev Revocation) {
	if rev.Deleted {
		rev.MinGen = math.MaxUint64
	}
	r.mu.Lock()
	old, known := r.bySub[rev.Subject]
	if known && old.MinGen >= rev.MinGen && (old.Deleted || !rev.Deleted) {
		r.mu.Unlock()
		return
	}
	rev.Deleted = rev.Deleted || old.Deleted
	rev.MinGen = max(rev.MinGen, old.MinGen)
	r.bySub[rev.Subject] = rev
	subs := make([]func(Revocation), 0, len(r.subs))
	for _, fn := range r.subs {
		subs = append(subs, fn)
	}
	r.mu.Unlock()
	for _, fn := range subs {
		fn(rev)
	}
}

// Revoked reports whether a token of subject at generation gen is
// withdrawn. A nil list revokes nothing.
func (r *Revocations) Revoked(subject string, gen uint64) bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	rev, ok := r.bySub[subject]
	r.mu.RUnlock()
	return ok && gen < rev.MinGen
}

// Subscribe calls fn with every revocation known now and then with every
// change, until cancel is called. fn must not block: hand the work to a
// worker of your own.
func (r *Revocations) Subscribe(fn func(Revocation)) (cancel func()) {
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	id := r.next
	r.next++
	r.subs[id] = fn
	known := make([]Revocation, 0, len(r.bySub))
	for _, rev := range r.bySub {
		known = append(known, rev)
	}
	r.mu.Unlock()
	for _, rev := range known {
		fn(rev)
	}
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}
