// Package buckets makes sure a bbolt store has the buckets a service keeps
// its data in, writing to it only when one is missing.
package buckets

import (
	bolt "go.etcd.io/bbolt"
)

// Ensure creates those of names that db lacks. A store that has them all
// is only read: a write transaction commits, and syncs the file twice,
// even when it changed nothing, and every service start opens its store
// this way.
func Ensure(db *bolt.DB, names ...[]byte) error {
	missing := false
	err := db.View(func(tx *bolt.Tx) error {
		for _, n := range names {
			if tx.Bucket(n) == nil {
				missing = true
			}
		}
		return nil
	})
	if err != nil || !missing {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
}
