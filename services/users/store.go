package users

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/buckets"
)

var (
	bucketUsers = []byte("users")
	// bucketRevoked keeps the revocations of deleted accounts, keyed by id,
	// so that a restart still refuses their tokens and a storage that was
	// down when an account went still learns to remove its files.
	bucketRevoked = []byte("revoked")
)

// record is a user as stored, password hash included; it never leaves the
// package.
type record struct {
	// ID is the account's immutable identity: tokens carry it and files
	// are owned by it. It is never reused, so a new account that takes a
	// deleted one's name inherits nothing.
	ID string `json:"id"`
	// Gen is the account's token generation; tokens of an older one are
	// refused.
	Gen          uint64    `json:"gen"`
	Username     string    `json:"username"`
	DisplayName  string    `json:"display_name"`
	Admin        bool      `json:"admin"`
	CreatedAt    time.Time `json:"created_at"`
	PasswordHash []byte    `json:"password_hash"`
}

func (r record) user() User {
	return User{ID: r.ID, Username: r.Username, DisplayName: r.DisplayName, Admin: r.Admin, CreatedAt: r.CreatedAt}
}

func (r record) identity() auth.Identity {
	return auth.Identity{ID: r.ID, Name: r.Username, Gen: r.Gen, Admin: r.Admin}
}

// newID returns a fresh account id: 128 random bits, hex-encoded, so it is
// a valid directory name for every service that keys data by it.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make account id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// store keeps accounts in a bbolt file.
type store struct {
	db *bolt.DB
}

var (
	errExists   = errors.New("exists")
	errNotFound = errors.New("not found")
)

func openStore(dir string) (*store, error) {
	return openStoreWithin(dir, time.Second)
}

// openStoreWithin opens the store in dir, waiting up to wait for another
// process to release it.
func openStoreWithin(dir string, wait time.Duration) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "users.db")
	// The timeout turns a file still locked by a previous instance into an
	// error the supervisor retries, instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait})
	if err != nil {
		return nil, fmt.Errorf("open user store %s: %w", path, err)
	}
	err = buckets.Ensure(db, bucketRevoked, bucketUsers)
	if err == nil {
		err = ensureIDs(db)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init user store %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// ensureIDs gives an id to every account stored before accounts had one.
// A store whose accounts all have one is only read: a write commits and
// syncs, twice, on the path of every start.
func ensureIDs(db *bolt.DB) error {
	missing := false
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			missing = missing || r.ID == ""
			return nil
		})
	})
	if err != nil || !missing {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error { return assignIDs(tx.Bucket(bucketUsers)) })
}

// assignIDs gives an id to every account of b stored before accounts had
// one.
func assignIDs(b *bolt.Bucket) error {
	var missing []record
	err := b.ForEach(func(_, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if r.ID == "" {
			missing = append(missing, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range missing {
		if r.ID, err = newID(); err != nil {
			return err
		}
		r.Gen = max(r.Gen, 1)
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.Username), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) get(name string) (record, bool, error) {
	var (
		r     record
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return record{}, false, fmt.Errorf("read user %q: %w", name, err)
	}
	return r, found, nil
}

// create adds r, or returns errExists when the name is taken.
func (s *store) create(r record) error {
	if r.ID == "" {
		return fmt.Errorf("create user %q: no account id", r.Username)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(r.Username)) != nil {
			return errExists
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode user %q: %w", r.Username, err)
		}
		return b.Put([]byte(r.Username), v)
	})
}

// remove deletes name and records the revocation of its id in the same
// transaction; it returns the removed record, or found false.
func (s *store) remove(name string) (removed record, found bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &removed); err != nil {
			return err
		}
		found = true
		rev, err := json.Marshal(auth.Revocation{Subject: removed.ID, Deleted: true})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRevoked).Put([]byte(removed.ID), rev); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return record{}, false, fmt.Errorf("delete user %q: %w", name, err)
	}
	return removed, found, nil
}

// setPassword replaces name's password hash and raises its generation,
// recording in the same transaction the revocation of every older one, so
// that a restart refuses the tokens issued before. id, when not empty,
// must be the account's; otherwise, and when there is no such name, it
// returns errNotFound.
func (s *store) setPassword(name, id string, hash []byte) (record, error) {
	var r record
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		v := b.Get([]byte(name))
		if v == nil {
			return errNotFound
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if id != "" && r.ID != id {
			return errNotFound
		}
		r.Gen++
		r.PasswordHash = hash
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		rev, err := json.Marshal(r.revocation())
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRevoked).Put([]byte(r.ID), rev); err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
	if errors.Is(err, errNotFound) {
		return record{}, err
	}
	if err != nil {
		return record{}, fmt.Errorf("set password of %q: %w", name, err)
	}
	return r, nil
}

// revocation withdraws the tokens of r's generations before its current
// one.
func (r record) revocation() auth.Revocation {
	return auth.Revocation{Subject: r.ID, MinGen: r.Gen}
}

// revocations returns every revocation recorded.
func (s *store) revocations() ([]auth.Revocation, error) {
	var out []auth.Revocation
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(_, v []byte) error {
			var r auth.Revocation
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	return out, nil
}

func (s *store) list() ([]record, error) {
	var out []record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out, nil
}
