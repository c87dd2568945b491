package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// recovery is what a start found to repair.
type recovery struct {
	// Uploads were left in tmp/ by a run that stopped mid-upload.
	Uploads int
	// Repaired files had no record, or one their size or mtime disagreed
	// with: their hash was redone.
	Repaired int
	// Dropped records described files that are gone.
	Dropped int
}

// recover makes the metadata agree with the files after whatever ended the
// previous run, before the first request: it deletes the uploads left in
// tmp/ (never visible, since only complete files are renamed in), rehashes
// every file whose record is missing or stale, drops the records of files
// that are gone, and recounts each user's usage.
func (f *files) recover() (recovery, error) {
	var rep recovery
	var err error
	if rep.Uploads, err = f.disk.clearTmp(); err != nil {
		return rep, err
	}
	users, err := f.disk.users()
	if err != nil {
		return rep, err
	}
	fixed := map[string]record{}
	found := map[string]bool{}
	for _, user := range users {
		if err := f.scan(user, fixed, found); err != nil {
			return rep, err
		}
	}
	rep.Repaired = len(fixed)
	rep.Dropped, err = f.store.reconcile(fixed, found)
	return rep, err
}

// scan walks user's tree, marking the key of every file in found and
// putting a fresh record in fixed for each whose record is missing or
// stale. Links are not followed and names no client could use are skipped.
func (f *files) scan(user string, fixed map[string]record, found map[string]bool) error {
	root, err := f.disk.userRoot(user, false)
	if err != nil {
		return err
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == ".":
			return nil
		case checkPath(p) != nil:
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case !d.Type().IsRegular():
			return nil
		}
		k := string(key(user, p))
		found[k] = true
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			delete(found, k)
			return nil
		}
		if err != nil {
			return err
		}
		rec, ok, err := f.store.get(user, p)
		if err != nil {
			return err
		}
		if ok && rec.matches(st) {
			return nil
		}
		rec, err = rehash(root, p)
		if err != nil {
			return err
		}
		fixed[k] = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan the tree of %s: %w", quote(user), err)
	}
	return nil
}

// rehash records the file at p from its content.
func rehash(root *os.Root, p string) (record, error) {
	file, err := root.Open(p)
	if err != nil {
		return record{}, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return record{}, err
	}
	sum, err := hashFile(file)
	if err != nil {
		return record{}, fmt.Errorf("hash %s: %w", quote(p), err)
	}
	return record{Size: st.Size(), SHA256: sum, MTime: st.ModTime().UnixNano()}, nil
}
