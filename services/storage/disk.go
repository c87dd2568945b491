package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// disk is the data dir on the file system: each user's tree under files/,
// uploads under way in tmp/. Everything below a user's root is reached
// through an os.Root of that root, so a link planted in the tree can never
// lead out of it, to the system or to another user.
type disk struct {
	tmp   *os.Root // <data-dir>/tmp
	files *os.Root // <data-dir>/files
	// faults fails the steps of the write path in tests; nil in service.
	faults faults
}

// errNoTree means a user has no root yet: they never uploaded.
var errNoTree = errors.New("user has no files yet")

// openDisk opens the data dir at dir, creating what is missing. tmp/ sits
// beside files/ so that a finished upload is renamed, never copied, into
// place: both are on the same file system.
func openDisk(dir string) (*disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	data, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open data dir %s: %w", dir, err)
	}
	defer data.Close()
	for _, sub := range []string{"tmp", "files"} {
		if err := data.Mkdir(sub, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", filepath.Join(dir, sub), err)
		}
	}
	if err := syncDir(data, "."); err != nil {
		return nil, err
	}
	tmp, err := data.OpenRoot("tmp")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, "tmp"), err)
	}
	files, err := data.OpenRoot("files")
	if err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, "files"), err)
	}
	return &disk{tmp: tmp, files: files}, nil
}

func (d *disk) close() error {
	return errors.Join(d.tmp.Close(), d.files.Close())
}

// userRoot opens the root of user's tree, creating it when create is set;
// without create, a missing tree is errNoTree. The caller closes the root.
func (d *disk) userRoot(user string, create bool) (*os.Root, error) {
	if create {
		err := d.files.Mkdir(user, 0o700)
		switch {
		case err == nil:
			if err := syncDir(d.files, "."); err != nil {
				return nil, err
			}
		case !errors.Is(err, fs.ErrExist):
			return nil, fmt.Errorf("create the tree of %s: %w", quote(user), err)
		}
	}
	fi, err := d.files.Lstat(user)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoTree
	}
	if err != nil {
		return nil, fmt.Errorf("look up the tree of %s: %w", quote(user), err)
	}
	if !fi.IsDir() {
		// A link here would hand this user another tree.
		return nil, fmt.Errorf("the tree of %s is not a directory", quote(user))
	}
	root, err := d.files.OpenRoot(user)
	if err != nil {
		return nil, fmt.Errorf("open the tree of %s: %w", quote(user), err)
	}
	return root, nil
}

// users lists the users that have a tree.
func (d *disk) users() ([]string, error) {
	dir, err := d.files.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open files dir: %w", err)
	}
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("read files dir: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && checkSegment(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// mkdirs creates the directory dir below root and each missing parent,
// syncing the directory that holds each one it creates, so that a file
// renamed into dir survives a crash together with its path. Every
// existing parent must be a real directory, not a link to one. It returns
// the directories it created, parents first, even on error, so that a
// write that fails later can take them away again.
func (d *disk) mkdirs(root *os.Root, dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	var created []string
	segs := strings.Split(dir, "/")
	for i := range segs {
		p := strings.Join(segs[:i+1], "/")
		err := d.faults.at(stepMkdir)
		if err == nil {
			err = root.Mkdir(p, 0o700)
		}
		if err == nil {
			created = append(created, p)
			if err := syncDir(root, parentOf(p)); err != nil {
				return created, err
			}
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return created, writeErr(err, p)
		}
		fi, err := root.Lstat(p)
		switch {
		case err != nil:
			return created, writeErr(err, p)
		case fi.Mode()&fs.ModeSymlink != 0:
			// Even a link that stays in the tree is refused: a file
			// written through it would have two names, one of which
			// recovery never sees.
			return created, fmt.Errorf("%w: %s is a link the service did not make", ErrInvalidPath, quote(p))
		case !fi.IsDir():
			return created, fmt.Errorf("%w: %s is a file", ErrPathInUse, quote(p))
		}
	}
	return created, nil
}

// rmdirs removes the directories mkdirs created, children first, as long
// as they are still empty: another upload may have moved in meanwhile.
func rmdirs(root *os.Root, created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		if root.Remove(created[i]) != nil {
			return
		}
		_ = syncDir(root, parentOf(created[i]))
	}
}

// writeErr maps an error of creating p below a user's root. A name that
// leads out of the root through a link (os.Root's refusal carries no
// errno) is refused like any other invalid path.
func writeErr(err error, p string) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: a file is in the way of %s", ErrPathInUse, quote(p))
	case noSpace(err):
		return fmt.Errorf("%w: creating directory %s", ErrNoSpace, quote(p))
	case errors.Is(err, syscall.ELOOP) || !errors.As(err, &errno):
		return fmt.Errorf("%w: %s leads out of your tree through a link", ErrInvalidPath, quote(p))
	}
	return fmt.Errorf("create %s: %w", quote(p), err)
}

// noSpace reports whether err says that the file system, or the disk
// quota of the service's account, is full.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// diskErr describes a failed step of the write path. A lack of space is
// ErrNoSpace (507), whose message names the step but never a path of the
// server's.
func diskErr(step string, err error) error {
	if noSpace(err) {
		return fmt.Errorf("%w: %s", ErrNoSpace, step)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// syncDir makes the entries of the directory name below root durable.
func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", quote(name), err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", quote(name), err)
	}
	return nil
}

// upload is a complete, synced upload waiting in tmp/.
type upload struct {
	name  string
	size  int64
	sum   string // hex SHA-256
	mtime time.Time
}

// overLimitError means an upload passed its limit after read bytes.
type overLimitError struct{ read int64 }

func (e *overLimitError) Error() string {
	return fmt.Sprintf("upload passed its limit after %d bytes", e.read)
}

// copyBuffer is what one upload holds in memory, whatever its size.
const copyBuffer = 128 << 10

// receive streams body into a new file in tmp/, hashing it on the way, and
// syncs it. limit (-1 for none) bounds the bytes: one byte more aborts the
// upload with an *overLimitError. The copy stops as soon as ctx is done;
// when ctx carries an error of the API as its cause (the service is
// stopping: 503), that is the answer. The upload's name is set even on
// error; the caller discards it.
func (d *disk) receive(ctx context.Context, body io.Reader, limit int64) (upload, error) {
	up := upload{name: "upload-" + rand.Text()}
	f, err := d.create(up.name)
	if err != nil {
		return up, err
	}
	defer f.Close()

	src := body
	if limit >= 0 && limit < math.MaxInt64 {
		src = io.LimitReader(body, limit+1)
	}
	h := sha256.New()
	buf := make([]byte, copyBuffer)
	var n int64
	for {
		if ctx.Err() != nil {
			return up, cut(ctx, n, nil)
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			if err := d.write(f, h, buf[:m]); err != nil {
				return up, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The sender broke off, the transport gave up on it, or
			// the service cut it short.
			return up, cut(ctx, n, rerr)
		}
	}
	if limit >= 0 && n > limit {
		return up, &overLimitError{read: n}
	}
	err = d.faults.at(stepSync)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return up, diskErr("syncing the upload", err)
	}
	st, err := f.Stat()
	if err != nil {
		return up, fmt.Errorf("stat upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return up, diskErr("closing the upload", err)
	}
	up.size, up.sum, up.mtime = n, hex.EncodeToString(h.Sum(nil)), st.ModTime()
	return up, nil
}

// create opens a new upload file in tmp/.
func (d *disk) create(name string) (*os.File, error) {
	if err := d.faults.at(stepCreate); err != nil {
		return nil, diskErr("creating the upload", err)
	}
	f, err := d.tmp.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, diskErr("creating the upload", err)
	}
	return f, nil
}

// write appends p to the upload f and to its hash.
func (d *disk) write(f *os.File, h hash.Hash, p []byte) error {
	err := d.faults.at(stepWrite)
	if err == nil {
		_, err = f.Write(p)
	}
	if err != nil {
		return diskErr("writing the upload", err)
	}
	h.Write(p)
	return nil
}

// cut is the error of an upload whose body stopped after n bytes with
// readErr (nil when ctx ended it between reads). An API error as the
// cause of ctx, such as the 503 of a service stopping, is the answer;
// otherwise the upload is incomplete (and the sender most likely gone).
func cut(ctx context.Context, n int64, readErr error) error {
	var kind *apierr.Error
	if cause := context.Cause(ctx); ctx.Err() != nil && errors.As(cause, &kind) {
		return fmt.Errorf("%w (upload cut after %d bytes)", cause, n)
	}
	if errors.As(readErr, &kind) {
		return fmt.Errorf("%w (upload cut after %d bytes)", readErr, n)
	}
	if transport.TimedOut(readErr) {
		// Idle past the upload's deadline: a timeout, like everywhere else.
		return fmt.Errorf("%w: upload idle past its deadline after %d bytes", apierr.ErrRequestTimeout, n)
	}
	// The cause stays for the logs; the answer names only the byte count,
	// never the connection's addresses.
	return &incomplete{n: n, cause: readErr}
}

// incomplete is an upload whose sender stopped sending: the client hears
// ErrIncomplete with the byte count, the log gets the cause.
type incomplete struct {
	n     int64
	cause error
}

func (e *incomplete) Error() string {
	return fmt.Sprintf("%s: after %d bytes", ErrIncomplete.Error(), e.n)
}

func (e *incomplete) Unwrap() []error { return []error{ErrIncomplete, e.cause} }

// discard removes what is left of an upload in tmp/: nothing once it was
// moved into place.
func (d *disk) discard(name string) {
	if name != "" {
		_ = d.tmp.Remove(name)
	}
}

// clearTmp removes every upload a previous run left behind and reports how
// many there were.
func (d *disk) clearTmp() (int, error) {
	dir, err := d.tmp.Open(".")
	if err != nil {
		return 0, fmt.Errorf("open upload dir: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	_ = dir.Close()
	if err != nil {
		return 0, fmt.Errorf("read upload dir: %w", err)
	}
	for _, name := range names {
		if err := d.tmp.RemoveAll(name); err != nil {
			return 0, fmt.Errorf("remove leftover upload %s: %w", quote(name), err)
		}
	}
	return len(names), nil
}

// hashFile returns the hex SHA-256 of an open file and rewinds it.
func hashFile(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, copyBuffer)); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
