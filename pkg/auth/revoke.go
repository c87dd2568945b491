package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
//
// Backed by a file (UseFile), the list is shared by every process on the
// machine: the users service saves it, and each process reads it before its
// services serve and again within a second of every change, so neither a
// restart nor a service run in a process of its own lets a deleted
// account's token back in.
type Revocations struct {
	mu    sync.RWMutex
	bySub map[string]Revocation
	subs  map[int]func(Revocation)
	next  int

	// path is the backing file; checked is when it was last looked at
	// (unix nanoseconds), seen the modification it had then.
	path    string
	checked atomic.Int64
	seen    atomic.Int64
}

// refreshEvery is how often a file-backed list looks for changes.
const refreshEvery = time.Second

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
	r.refresh()
	r.mu.RLock()
	rev, ok := r.bySub[subject]
	r.mu.RUnlock()
	return ok && (rev.Deleted || gen < rev.MinGen)
}

// Deleted reports whether subject's account was deleted. A nil list knows
// of no deletion.
func (r *Revocations) Deleted(subject string) bool {
	if r == nil {
		return false
	}
	r.refresh()
	r.mu.RLock()
	rev, ok := r.bySub[subject]
	r.mu.RUnlock()
	return ok && rev.Deleted
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

// UseFile backs the list with the file at path: what it holds is merged in
// now (a missing file holds nothing), and again whenever it changes. An
// unreadable file is an error, so a service never serves without the
// revocations it should know.
func (r *Revocations) UseFile(path string) error {
	r.mu.Lock()
	r.path = path
	r.mu.Unlock()
	return r.load(time.Now())
}

// Save writes the whole list to its file atomically (a temp file renamed
// over it), for the other processes of the machine to read. A file that
// already holds exactly the list, or a missing one for an empty list, is
// left as it is: users saves at every start, and a synced write there
// would delay every start for nothing.
func (r *Revocations) Save() error {
	r.mu.RLock()
	path := r.path
	list := make([]Revocation, 0, len(r.bySub))
	for _, rev := range r.bySub {
		list = append(list, rev)
	}
	r.mu.RUnlock()
	if path == "" {
		return nil
	}
	slices.SortFunc(list, func(a, b Revocation) int { return strings.Compare(a.Subject, b.Subject) })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	switch cur, err := os.ReadFile(path); {
	case err == nil && bytes.Equal(cur, b):
		return nil
	case errors.Is(err, fs.ErrNotExist) && len(list) == 0:
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save revocations: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".revocations-*")
	if err != nil {
		return fmt.Errorf("save revocations: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save revocations: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save revocations: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save revocations: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save revocations: %w", err)
	}
	return nil
}

// refresh reloads the file when it changed, looking at most once per
// refreshEvery; a failed reload keeps what is known and tries again later.
func (r *Revocations) refresh() {
	now := time.Now()
	last := r.checked.Load()
	if now.UnixNano()-last < int64(refreshEvery) || !r.checked.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	r.mu.RLock()
	path := r.path
	r.mu.RUnlock()
	if path == "" {
		return
	}
	if st, err := os.Stat(path); err == nil && st.ModTime().UnixNano() == r.seen.Load() {
		return
	}
	_ = r.load(now)
}

func (r *Revocations) load(now time.Time) error {
	r.checked.Store(now.UnixNano())
	r.mu.RLock()
	path := r.path
	r.mu.RUnlock()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}
	var list []Revocation
	if err := json.NewDecoder(f).Decode(&list); err != nil {
		return fmt.Errorf("read revocations %s: %w", path, err)
	}
	for _, rev := range list {
		r.Revoke(rev)
	}
	r.seen.Store(st.ModTime().UnixNano())
	return nil
}
