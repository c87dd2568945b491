// Package dirlock keeps two processes from using one data directory at
// once: a lock file in the directory, held with flock(2) for the life of
// the process and naming its pid. The kernel drops the lock when the
// process ends, however it ends, so a stale file never locks anyone out.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileName is the lock file in a locked directory.
const FileName = "ocis.lock"

// ErrLocked is a directory another live process holds.
var ErrLocked = errors.New("data directory is in use")

// LockedError names the directory and the process holding it.
type LockedError struct {
	Dir string
	// PID is the holder's pid as written in the lock file; 0 when the
	// file held none yet (the holder is between its lock and its write).
	PID int
	// Holder is what the holder wrote after its pid ("ocis server").
	Holder string
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
		if e.Holder != "" {
			who += " (" + e.Holder + ")"
		}
	}
	return fmt.Sprintf("%v: %s is locked by %s; stop it first, or give this one another --base-data-path (OCIS_BASE_DATA_PATH) or --data-dir", ErrLocked, e.Dir, who)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is a held lock; Release gives it up.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and locks it for this process, writing
// "<pid> <holder>" into the lock file. It never waits: a directory
// another process holds is a LockedError at once.
func Acquire(dir, holder string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, who := readHolder(f)
			return nil, &LockedError{Dir: dir, PID: pid, Holder: who}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Truncate, then write: a reader between the two sees no pid rather
	// than a stale one.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+holder+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

func readHolder(f *os.File) (int, string) {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	pidText, who, _ := strings.Cut(strings.TrimSpace(line), " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return 0, ""
	}
	return pid, who
}

// Release unlocks the directory; the lock file stays, empty of meaning
// once no process holds it. Safe on a nil Lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// Set is the locks one process holds.
type Set []*Lock

// AcquireAll locks every dir, in order, or none: on a refusal it releases
// what it took and returns the refusal.
func AcquireAll(holder string, dirs ...string) (Set, error) {
	var s Set
	seen := map[string]bool{}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			abs = d
		}
		if seen[abs] {
			continue
		}
		seen[abs] = true
		l, err := Acquire(abs, holder)
		if err != nil {
			s.Release()
			return nil, err
		}
		s = append(s, l)
	}
	return s, nil
}

// Release gives up every lock of the set.
func (s Set) Release() {
	for _, l := range s {
		l.Release()
	}
}
