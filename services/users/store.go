package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketUsers = []byte("users")

// record is a user as stored, password hash included; it never leaves the
// package.
type record struct {
	Username     string    `json:"username"`
	DisplayName  string    `json:"display_name"`
	Admin        bool      `json:"admin"`
	CreatedAt    time.Time `json:"created_at"`
	PasswordHash []byte    `json:"password_hash"`
}

func (r record) user() User {
	return User{Username: r.Username, DisplayName: r.DisplayName, Admin: r.Admin, CreatedAt: r.CreatedAt}
}

// store keeps accounts in a bbolt file.
type store struct {
	db *bolt.DB
}

var errExists = errors.New("exists")

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "users.db")
	// The timeout turns a file still locked by a previous instance into an
	// error the supervisor retries, instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open user store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketUsers)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init user store %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

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

// remove deletes name and reports whether it existed.
func (s *store) remove(name string) (bool, error) {
	var existed bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		existed = b.Get([]byte(name)) != nil
		return b.Delete([]byte(name))
	})
	if err != nil {
		return false, fmt.Errorf("delete user %q: %w", name, err)
	}
	return existed, nil
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
