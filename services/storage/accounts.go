package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	bolt "go.etcd.io/bbolt"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// removeAccount deletes every file and record of the account id, whose
// account was deleted: its files are never handed to anyone else, and a
// new account of the same name has another id, so nothing is inherited.
// Files go first, then records: a crash in between leaves records without
// files, which recovery drops.
func (f *files) removeAccount(id string) (removed bool, err error) {
	if checkSegment(id) != nil {
		return false, nil // no tree can have that name
	}
	tree := f.trees.of(id)
	tree.Lock()
	defer tree.Unlock()
	if _, err := f.disk.files.Lstat(id); errors.Is(err, fs.ErrNotExist) {
		return false, f.store.dropUser(id)
	}
	if err := f.disk.files.RemoveAll(id); err != nil {
		return false, fmt.Errorf("remove the tree of %s: %w", quote(id), err)
	}
	if err := syncDir(f.disk.files, "."); err != nil {
		return false, err
	}
	return true, f.store.dropUser(id)
}

// dropUser deletes every record and the usage of user.
func (s *store) dropUser(user string) error {
	prefix := key(user, "")
	// Every start replays every deletion ever made: a read finds out
	// cheaply that there is nothing left to drop, without a write's fsync.
	var any bool
	err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketFiles).Cursor().Seek(prefix)
		any = (k != nil && bytes.HasPrefix(k, prefix)) || tx.Bucket(bucketUsage).Get([]byte(user)) != nil
		return nil
	})
	if err != nil || !any {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFiles).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketUsage).Delete([]byte(user))
	})
	if err != nil {
		return fmt.Errorf("drop the records of %s: %w", quote(user), err)
	}
	return nil
}

// accountRemover removes the files of deleted accounts as the process's
// revocation list learns of them, on a worker of its own so that the
// revocation never waits on the disk. Subscribing replays every deletion
// known, so a storage that was down when an account went catches up.
type accountRemover struct {
	logger  log.Logger
	files   *files
	revoked *auth.Revocations

	mu      sync.Mutex
	pending []string
	wake    chan struct{}
	stop    chan struct{}
}

func newAccountRemover(logger log.Logger, f *files, revoked *auth.Revocations) *accountRemover {
	return &accountRemover{logger: logger, files: f, revoked: revoked, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (a *accountRemover) enqueue(r auth.Revocation) {
	if !r.Deleted {
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, r.Subject)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// actor runs the remover in the service's group; it stops with the group
// and never outlives the stores it writes to.
func (a *accountRemover) actor() service.Actor {
	var once sync.Once
	return service.Actor{
		Execute: func() error {
			cancel := a.revoked.Subscribe(a.enqueue)
			defer cancel()
			for {
				a.drain()
				select {
				case <-a.wake:
				case <-a.stop:
					return nil
				}
			}
		},
		Interrupt: func(error) { once.Do(func() { close(a.stop) }) },
	}
}

func (a *accountRemover) drain() {
	a.mu.Lock()
	ids := a.pending
	a.pending = nil
	a.mu.Unlock()
	for _, id := range ids {
		removed, err := a.files.removeAccount(id)
		switch {
		case err != nil:
			level.Error(a.logger).Log("msg", "remove files of deleted account", "account", id, "err", err)
		case removed:
			level.Info(a.logger).Log("msg", "files of deleted account removed", "account", id)
		}
	}
}
