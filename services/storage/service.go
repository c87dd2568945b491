// Package storage keeps each user's files on disk: streamed uploads that are
// never seen half-written, downloads with Range and ETag, listings and
// deletes, with the metadata kept consistent with the files across crashes.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Service is the business of per-user files, free of HTTP. No method takes
// a user: every call acts on the files of its caller (auth.FromContext), so
// no caller can even name another user's files.
type Service interface {
	Put(ctx context.Context, req PutRequest) (PutResult, error)
	Get(ctx context.Context, req GetRequest) (Download, error)
	List(ctx context.Context, req ListRequest) (Listing, error)
	Delete(ctx context.Context, req DeleteRequest) (endpoint.Empty, error)
}

// PutRequest stores Body at Path, creating or replacing the file.
type PutRequest struct {
	Path string
	Body io.Reader
	// Size is the length of Body, or -1 when it is not known up front.
	Size int64
	// IfMatch, when set, is a list of entity tags or "*": the file must
	// exist with one of them.
	IfMatch string
	// IfNoneMatch, when set, is "*" (the file must not exist) or a list
	// of entity tags the file must not have.
	IfNoneMatch string
}

// PutResult is the file as stored and whether the upload created it.
type PutResult struct {
	File    FileInfo
	Created bool
}

// GetRequest names a file to download.
type GetRequest struct {
	Path string
}

// Download is an open file and what it is. The receiver closes Content.
type Download struct {
	File    FileInfo
	Content io.ReadSeekCloser
}

// ListRequest names a directory: "" is the user's root.
type ListRequest struct {
	Path string
}

// Listing is the content of one directory, sorted by path.
type Listing struct {
	// Path is the directory with a trailing "/", or "" for the root.
	Path    string  `json:"path"`
	Entries []Entry `json:"entries"`
}

// DeleteRequest names a file, or a directory that must be empty. A trailing
// "/" insists on a directory.
type DeleteRequest struct {
	Path string
}

// FileInfo describes one stored file.
type FileInfo struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// ETag is the hex SHA-256 of the content as a strong HTTP entity tag,
	// double quotes included.
	ETag  string    `json:"etag"`
	MTime time.Time `json:"mtime"`
}

// Entry is one file or directory of a listing. A directory's path ends in
// "/" and carries nothing else.
type Entry struct {
	FileInfo
	Dir bool
}

// MarshalJSON writes a file as a file object and a directory as
// {"path","dir":true}.
func (e Entry) MarshalJSON() ([]byte, error) {
	if e.Dir {
		return json.Marshal(struct {
			Path string `json:"path"`
			Dir  bool   `json:"dir"`
		}{e.Path, true})
	}
	return json.Marshal(e.FileInfo)
}

// UnmarshalJSON reads either shape MarshalJSON writes.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var v struct {
		FileInfo
		Dir bool `json:"dir"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Entry{FileInfo: v.FileInfo, Dir: v.Dir}
	return nil
}

// The errors of the storage service; clients match them with errors.Is.
var (
	ErrInvalidPath   = apierr.New(apierr.CodeInvalidArgument, "storage.invalid_path", "invalid path")
	ErrBadRange      = apierr.New(apierr.CodeInvalidArgument, "storage.bad_range", "range not satisfiable")
	ErrIncomplete    = apierr.New(apierr.CodeInvalidArgument, "storage.incomplete", "upload incomplete")
	ErrFileNotFound  = apierr.New(apierr.CodeNotFound, "storage.file_not_found", "file not found")
	ErrDirNotFound   = apierr.New(apierr.CodeNotFound, "storage.dir_not_found", "directory not found")
	ErrPathInUse     = apierr.New(apierr.CodeConflict, "storage.path_in_use", "path in use")
	ErrDirNotEmpty   = apierr.New(apierr.CodeConflict, "storage.dir_not_empty", "directory not empty")
	ErrPrecondition  = apierr.New(apierr.CodePreconditionFailed, "storage.precondition", "precondition failed")
	ErrFileTooLarge  = apierr.New(apierr.CodeTooLarge, "storage.file_too_large", "file larger than the quota")
	ErrQuotaExceeded = apierr.New(apierr.CodeInsufficientSpace, "storage.quota_exceeded", "quota exceeded")
	ErrNoSpace       = apierr.New(apierr.CodeInsufficientSpace, "storage.no_space", "no space left on the storage device")
	ErrNoAccount     = apierr.New(apierr.CodePermissionDenied, "storage.no_account", "account cannot own files")
)

// files implements Service over a disk and a metadata store.
type files struct {
	store *store
	disk  *disk
	// quota bounds the bytes of each user; 0 means no bound.
	quota int64
	// trees is held shared by every commit into a user's tree and
	// exclusively by a delete, so that a directory is never removed
	// between an upload creating it and the upload moving in.
	trees stripes
	// paths serialises the writers of one path and keeps readers from
	// seeing a file with another file's metadata.
	paths stripes
	// revoked tells which accounts were deleted: an upload that was
	// already streaming when its account went must not commit after the
	// account's files were removed.
	revoked *auth.Revocations
	// events hears of every file written or deleted; without NATS it
	// drops them.
	events service.Publisher
	logger log.Logger
}

func newFiles(st *store, d *disk, quota int64, revoked *auth.Revocations) *files {
	return &files{store: st, disk: d, quota: quota, revoked: revoked, events: service.NoPublisher{}, logger: log.NewNopLogger()}
}

// caller is the account a call acts for: the immutable id of the verified
// token, never the name, so a name deleted and taken again owns nothing of
// the old account's. It must itself be a valid directory name.
func caller(ctx context.Context) (string, error) {
	claims, err := auth.FromContext(ctx)
	if err != nil {
		return "", err
	}
	user := claims.UserID()
	if err := checkSegment(user); err != nil {
		return "", fmt.Errorf("%w: %s", ErrNoAccount, quote(user))
	}
	return user, nil
}

func (f *files) Put(ctx context.Context, req PutRequest) (PutResult, error) {
	user, err := caller(ctx)
	if err != nil {
		return PutResult{}, err
	}
	if err := checkPath(req.Path); err != nil {
		return PutResult{}, err
	}
	if req.Body == nil {
		req.Body = strings.NewReader("")
	}
	// Fail before a byte is read when the answer is already known: the
	// metadata says the precondition fails, or the announced size cannot
	// fit. The commit checks both again, authoritatively.
	cur, exists, err := f.store.get(user, req.Path)
	if err != nil {
		return PutResult{}, err
	}
	if err := preconditions(req, cur.info(req.Path), exists); err != nil {
		return PutResult{}, err
	}
	limit, err := f.room(user, cur.Size, req.Size)
	if err != nil {
		return PutResult{}, err
	}

	up, err := f.disk.receive(ctx, req.Body, limit)
	defer f.disk.discard(up.name)
	var over *overLimitError
	switch {
	case errors.As(err, &over):
		return PutResult{}, f.overQuota(over.read)
	case err != nil:
		return PutResult{}, err
	case req.Size >= 0 && up.size != req.Size:
		return PutResult{}, fmt.Errorf("%w: got %d of %d bytes", ErrIncomplete, up.size, req.Size)
	}
	res, err := f.commit(user, req, up)
	var kind *apierr.Error
	if err != nil && !errors.As(err, &kind) && noSpace(err) {
		// A full disk is the client's 507 wherever on the write path
		// it shows; the steps that can say which do so already.
		return PutResult{}, fmt.Errorf("%w: storing %s", ErrNoSpace, quote(req.Path))
	}
	if err == nil {
		f.publish(ctx, EventFileWritten, user, req.Path, fileWritten{Path: req.Path, Size: res.File.Size, ETag: res.File.ETag, New: res.Created})
	}
	return res, err
}

// room is how many bytes an upload of size (-1 unknown) replacing a file of
// oldSize may write, or -1 for no bound.
func (f *files) room(user string, oldSize, size int64) (int64, error) {
	if f.quota <= 0 {
		return -1, nil
	}
	if size > f.quota {
		return 0, f.overQuota(size)
	}
	used, err := f.store.usage(user)
	if err != nil {
		return 0, err
	}
	room := max(f.quota-(used-oldSize), 0)
	if size > room {
		return 0, fmt.Errorf("%w: %d bytes announced, %d free of %d", ErrQuotaExceeded, size, room, f.quota)
	}
	return room, nil
}

// overQuota is the error for an upload of at least n bytes that does not
// fit: too large when it could never fit, out of space when the user's
// other files are in the way.
func (f *files) overQuota(n int64) error {
	if n > f.quota {
		return fmt.Errorf("%w: the upload is over the quota of %d bytes", ErrFileTooLarge, f.quota)
	}
	return fmt.Errorf("%w: the upload does not fit in what is left of the %d bytes", ErrQuotaExceeded, f.quota)
}

// commit moves a received upload into place: under the path's lock, it
// checks the preconditions against the file as it is now, then renames the
// upload over it and records the metadata in one transaction, so that the
// check, the rename and the metadata are atomic together. When anything
// fails, the tree is left as it was: a replaced file is restored, a new one
// removed, and the directories made for it too.
func (f *files) commit(user string, req PutRequest, up upload) (res PutResult, err error) {
	tree := f.trees.of(user)
	tree.RLock()
	// Under the tree's lock, which removeAccount holds exclusively: either
	// the account is deleted now, or its removal comes after this commit
	// and takes the file with it.
	if f.revoked.Deleted(user) {
		tree.RUnlock()
		return PutResult{}, auth.ErrTokenRevoked
	}
	root, err := f.disk.userRoot(user, true)
	if err != nil {
		tree.RUnlock()
		return PutResult{}, err
	}
	defer root.Close()
	created, err := f.disk.mkdirs(root, parentOf(req.Path))
	if err == nil {
		res, err = f.replace(root, user, req, up)
	}
	tree.RUnlock()
	if err != nil && len(created) > 0 {
		// Alone in the tree, so that no other upload is between making
		// sure a directory exists and moving into it.
		tree.Lock()
		rmdirs(root, created)
		tree.Unlock()
	}
	return res, err
}

// replace moves the upload to req.Path, whose parent exists, under the
// path's lock; the caller holds the tree.
func (f *files) replace(root *os.Root, user string, req PutRequest, up upload) (PutResult, error) {
	lock := f.paths.of(string(key(user, req.Path)))
	lock.Lock()
	defer lock.Unlock()
	cur, exists, err := f.current(root, user, req.Path)
	if err != nil {
		return PutResult{}, err
	}
	if err := preconditions(req, cur, exists); err != nil {
		return PutResult{}, err
	}

	parent, err := root.Open(parentOf(req.Path))
	if err != nil {
		return PutResult{}, fmt.Errorf("open directory of %s: %w", quote(req.Path), err)
	}
	defer parent.Close()
	tmp, err := f.disk.tmp.Open(".")
	if err != nil {
		return PutResult{}, fmt.Errorf("open upload directory: %w", err)
	}
	defer tmp.Close()

	m := move{faults: f.disk.faults, tmp: tmp, upload: up.name, dir: parent, name: path.Base(req.Path), p: req.Path}
	if exists {
		m.kept = "kept-" + rand.Text()
	}
	rec := record{Size: up.size, SHA256: up.sum, MTime: up.mtime.UnixNano()}
	err = f.store.put(user, req.Path, rec, f.quota, m.place)
	// Whether the record committed or the move was taken back, the old
	// content needs its second name no longer; but when taking the move
	// back failed, that second name is all that is left of it, so it stays
	// (and the error, logged in full as an internal one, names it).
	if m.lost {
		return PutResult{}, fmt.Errorf("%w; the replaced content of %s is kept as tmp/%s", err, quote(req.Path), m.kept)
	}
	f.disk.discard(m.kept)
	if errors.Is(err, errOverQuota) {
		return PutResult{}, f.overQuota(up.size)
	}
	if err != nil {
		return PutResult{}, err
	}
	return PutResult{File: rec.info(req.Path), Created: !exists}, nil
}

// move puts an upload in place of a file, or where there was none, in a
// way that can be taken back until its record commits: the file it
// replaces keeps a second name in tmp/ (kept) until then. The path always
// names a whole file, the old or the new, even across a crash; recovery
// removes whatever second name a crash leaves in tmp/.
type move struct {
	faults faults
	tmp    *os.File // tmp/
	upload string   // the upload's name in tmp/
	dir    *os.File // the directory it moves into
	name   string   // its name there
	p      string   // its path in the user's tree, for messages
	kept   string   // the second name of the file it replaces, if any
	// lost is set when taking the move back failed: the replaced file's
	// second name is then the only one it has.
	lost bool
}

// place is the change on disk, run inside the metadata transaction; it
// returns the undo the transaction calls when it fails after place.
func (m *move) place() (func() error, error) {
	if m.kept != "" {
		err := m.faults.at(stepKeep)
		if err == nil {
			err = linkAt(m.dir, m.name, m.tmp, m.kept)
		}
		if err != nil {
			m.kept = "" // nothing to discard
			return nil, diskErr("keeping the file it replaces", err)
		}
	}
	err := m.faults.at(stepRename)
	if err == nil {
		err = renameAt(m.tmp, m.upload, m.dir, m.name)
	}
	if err != nil {
		return nil, diskErr("moving the upload into place", err)
	}
	// The rename is durable only once the directory is.
	err = m.faults.at(stepSyncDir)
	if err == nil {
		err = m.dir.Sync()
	}
	if err != nil {
		err = diskErr(fmt.Sprintf("syncing the directory of %s", quote(m.p)), err)
		if uerr := m.undo(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("take back the move: %w", uerr))
		}
		return nil, err
	}
	return m.undo, nil
}

// undo restores what the path named before place: the replaced file under
// its own name again, or no file at all.
func (m *move) undo() error {
	var err error
	if m.kept != "" {
		err = renameAt(m.tmp, m.kept, m.dir, m.name)
		if err == nil {
			m.kept = "" // it has its one name back
		} else {
			m.lost = true
		}
	} else {
		err = unlinkAt(m.dir, m.name)
	}
	if err != nil {
		return err
	}
	return m.dir.Sync()
}

// removeFile deletes the file at p and its record together: inside the
// transaction the file moves to tmp/ (the same file system), so that a
// commit that fails can move it back; once the record is gone, the file
// in tmp/ goes too. A crash in between leaves it in tmp/, which recovery
// empties, and no record, so the delete stands.
func (f *files) removeFile(root *os.Root, user, p string) error {
	parent, err := root.Open(parentOf(p))
	if err != nil {
		return fmt.Errorf("open directory of %s: %w", quote(p), err)
	}
	defer parent.Close()
	tmp, err := f.disk.tmp.Open(".")
	if err != nil {
		return fmt.Errorf("open upload directory: %w", err)
	}
	defer tmp.Close()
	aside := "deleted-" + rand.Text()
	name := path.Base(p)
	moved := false
	err = f.store.remove(user, p, func() (func() error, error) {
		if err := renameAt(parent, name, tmp, aside); err != nil {
			return nil, diskErr(fmt.Sprintf("removing %s", quote(p)), err)
		}
		moved = true
		if err := parent.Sync(); err != nil {
			return nil, errors.Join(diskErr(fmt.Sprintf("syncing the directory of %s", quote(p)), err), putBack(tmp, aside, parent, name))
		}
		return func() error { return putBack(tmp, aside, parent, name) }, nil
	})
	if err == nil && moved {
		f.disk.discard(aside)
	}
	return err
}

// putBack moves a file set aside in tmp/ back to its name.
func putBack(tmp *os.File, aside string, dir *os.File, name string) error {
	if err := renameAt(tmp, aside, dir, name); err != nil {
		return err
	}
	return dir.Sync()
}

// current describes the file at p as it is on disk now; exists is false
// when there is none. Something other than a file there is in the way.
func (f *files) current(root *os.Root, user, p string) (FileInfo, bool, error) {
	fi, err := root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return FileInfo{}, false, nil
	case err != nil:
		return FileInfo{}, false, err
	case fi.IsDir():
		return FileInfo{}, false, fmt.Errorf("%w: %s is a directory", ErrPathInUse, quote(p))
	case !fi.Mode().IsRegular():
		return FileInfo{}, false, fmt.Errorf("%w: %s is a link or special file the service did not make", ErrInvalidPath, quote(p))
	}
	info, file, err := f.open(root, user, p)
	if err != nil {
		return FileInfo{}, false, err
	}
	return info, true, file.Close()
}

// preconditions checks If-Match and If-None-Match against the current file.
func preconditions(req PutRequest, cur FileInfo, exists bool) error {
	if req.IfMatch != "" && (!exists || !etagMatches(req.IfMatch, cur.ETag, false)) {
		if !exists {
			return fmt.Errorf("%w: If-Match, but %s does not exist", ErrPrecondition, quote(req.Path))
		}
		return fmt.Errorf("%w: If-Match, but %s has etag %s", ErrPrecondition, quote(req.Path), cur.ETag)
	}
	if req.IfNoneMatch != "" && exists && etagMatches(req.IfNoneMatch, cur.ETag, true) {
		return fmt.Errorf("%w: If-None-Match, but %s exists with etag %s", ErrPrecondition, quote(req.Path), cur.ETag)
	}
	return nil
}

// etagMatches reports whether the list of entity tags in header holds etag
// or "*". Weak comparison ignores the W/ prefix, as If-None-Match wants;
// strong comparison, for If-Match, never matches a weak tag.
func etagMatches(header, etag string, weak bool) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if weak {
			tag = strings.TrimPrefix(tag, "W/")
		}
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

func (f *files) Get(ctx context.Context, req GetRequest) (Download, error) {
	user, err := caller(ctx)
	if err != nil {
		return Download{}, err
	}
	if err := checkPath(req.Path); err != nil {
		return Download{}, err
	}
	lock := f.paths.of(string(key(user, req.Path)))
	lock.RLock()
	defer lock.RUnlock()
	root, err := f.disk.userRoot(user, false)
	if errors.Is(err, errNoTree) {
		return Download{}, fmt.Errorf("%w: %s", ErrFileNotFound, quote(req.Path))
	}
	if err != nil {
		return Download{}, err
	}
	defer root.Close()
	info, file, err := f.open(root, user, req.Path)
	if err != nil {
		return Download{}, err
	}
	return Download{File: info, Content: file}, nil
}

// open opens the regular file at p and describes it. A directory, a link
// or a name that does not resolve inside the root is not found; a link
// among the parents that stays inside the root is followed, which can only
// lead to the user's own files. The caller holds the path's lock.
func (f *files) open(root *os.Root, user, p string) (FileInfo, *os.File, error) {
	fi, err := root.Lstat(p)
	if err != nil {
		return FileInfo{}, nil, missing(err, ErrFileNotFound, p)
	}
	if fi.IsDir() {
		return FileInfo{}, nil, fmt.Errorf("%w: %s is a directory; list it as %s", ErrFileNotFound, quote(p), quote(p+"/"))
	}
	if !fi.Mode().IsRegular() {
		return FileInfo{}, nil, fmt.Errorf("%w: %s", ErrFileNotFound, quote(p))
	}
	file, err := root.Open(p)
	if err != nil {
		return FileInfo{}, nil, missing(err, ErrFileNotFound, p)
	}
	st, err := file.Stat()
	if err == nil && !os.SameFile(fi, st) {
		// Swapped for a link between the two looks: serve nothing.
		err = fmt.Errorf("%w: %s", ErrFileNotFound, quote(p))
	}
	if err != nil {
		_ = file.Close()
		return FileInfo{}, nil, err
	}
	info, err := f.describe(user, p, file, st)
	if err != nil {
		_ = file.Close()
		return FileInfo{}, nil, err
	}
	return info, file, nil
}

// describe returns the metadata of an open file. When the record is
// missing or its size and mtime disagree with the file, the file changed
// behind the service's back: its hash is computed afresh and recorded.
func (f *files) describe(user, p string, file *os.File, st fs.FileInfo) (FileInfo, error) {
	rec, found, err := f.store.get(user, p)
	if err != nil {
		return FileInfo{}, err
	}
	if found && rec.matches(st) {
		return rec.info(p), nil
	}
	sum, err := hashFile(file)
	if err != nil {
		return FileInfo{}, fmt.Errorf("hash %s: %w", quote(p), err)
	}
	rec = record{Size: st.Size(), SHA256: sum, MTime: st.ModTime().UnixNano()}
	// With the disk full the record cannot be kept, but the hash is right:
	// the file is served, and hashed again on the next read.
	if err := f.store.put(user, p, rec, 0, nil); err != nil && !errors.Is(err, ErrNoSpace) {
		return FileInfo{}, err
	}
	return rec.info(p), nil
}

func (f *files) List(ctx context.Context, req ListRequest) (Listing, error) {
	user, err := caller(ctx)
	if err != nil {
		return Listing{}, err
	}
	dir, err := checkDir(req.Path)
	if err != nil {
		return Listing{}, err
	}
	listing := Listing{Path: dir, Entries: []Entry{}}
	name := "."
	if dir != "" {
		listing.Path, name = dir+"/", dir
	}
	root, err := f.disk.userRoot(user, false)
	switch {
	case errors.Is(err, errNoTree) && dir == "":
		return listing, nil // a user who never uploaded has an empty root
	case errors.Is(err, errNoTree):
		return Listing{}, fmt.Errorf("%w: %s", ErrDirNotFound, quote(listing.Path))
	case err != nil:
		return Listing{}, err
	}
	defer root.Close()

	fi, err := root.Lstat(name)
	if err != nil {
		return Listing{}, missing(err, ErrDirNotFound, listing.Path)
	}
	if !fi.IsDir() {
		return Listing{}, fmt.Errorf("%w: %s is not a directory", ErrDirNotFound, quote(listing.Path))
	}
	d, err := root.Open(name)
	if err != nil {
		return Listing{}, missing(err, ErrDirNotFound, listing.Path)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return Listing{}, fmt.Errorf("read directory %s: %w", quote(listing.Path), err)
	}
	for _, e := range entries {
		p := join(dir, e.Name())
		if checkPath(p) != nil {
			continue // put there behind the service's back; no client could name it
		}
		switch {
		case e.IsDir():
			listing.Entries = append(listing.Entries, Entry{FileInfo: FileInfo{Path: p + "/"}, Dir: true})
		case e.Type().IsRegular():
			info, err := f.entry(root, user, p, e)
			if errors.Is(err, ErrFileNotFound) {
				continue // deleted while listing
			}
			if err != nil {
				return Listing{}, err
			}
			listing.Entries = append(listing.Entries, Entry{FileInfo: info})
		}
		// Links and special files are not the service's: never listed.
	}
	slices.SortFunc(listing.Entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return listing, nil
}

// entry describes one file of a listing from its metadata, or, when that
// disagrees with the file, by opening it under its lock.
func (f *files) entry(root *os.Root, user, p string, e fs.DirEntry) (FileInfo, error) {
	st, err := e.Info()
	if err != nil {
		return FileInfo{}, missing(err, ErrFileNotFound, p)
	}
	rec, found, err := f.store.get(user, p)
	if err != nil {
		return FileInfo{}, err
	}
	if found && rec.matches(st) {
		return rec.info(p), nil
	}
	lock := f.paths.of(string(key(user, p)))
	lock.RLock()
	defer lock.RUnlock()
	info, file, err := f.open(root, user, p)
	if err != nil {
		return FileInfo{}, err
	}
	return info, file.Close()
}

func (f *files) Delete(ctx context.Context, req DeleteRequest) (endpoint.Empty, error) {
	user, err := caller(ctx)
	if err != nil {
		return endpoint.Empty{}, err
	}
	p, wantDir := strings.CutSuffix(req.Path, "/")
	if p == "" {
		return endpoint.Empty{}, fmt.Errorf("%w: the root cannot be deleted", ErrInvalidPath)
	}
	if err := checkPath(p); err != nil {
		return endpoint.Empty{}, err
	}
	tree := f.trees.of(user)
	tree.Lock()
	defer tree.Unlock()
	lock := f.paths.of(string(key(user, p)))
	lock.Lock()
	defer lock.Unlock()

	root, err := f.disk.userRoot(user, false)
	if errors.Is(err, errNoTree) {
		return endpoint.Empty{}, fmt.Errorf("%w: %s", ErrFileNotFound, quote(req.Path))
	}
	if err != nil {
		return endpoint.Empty{}, err
	}
	defer root.Close()
	fi, err := root.Lstat(p)
	if err != nil {
		return endpoint.Empty{}, missing(err, ErrFileNotFound, req.Path)
	}
	switch {
	case fi.IsDir():
		err := root.Remove(p)
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			return endpoint.Empty{}, fmt.Errorf("%w: %s", ErrDirNotEmpty, quote(req.Path))
		}
		if err != nil {
			return endpoint.Empty{}, fmt.Errorf("remove directory %s: %w", quote(req.Path), err)
		}
		return endpoint.Empty{}, syncDir(root, parentOf(p))
	case fi.Mode().IsRegular() && !wantDir:
		if err := f.removeFile(root, user, p); err != nil {
			return endpoint.Empty{}, err
		}
		f.publish(ctx, EventFileDeleted, user, p, fileDeleted{Path: p})
		return endpoint.Empty{}, nil
	default:
		// A file asked for as a directory, or a link the service did
		// not make and so will not touch.
		return endpoint.Empty{}, fmt.Errorf("%w: %s", ErrFileNotFound, quote(req.Path))
	}
}

// missing maps an error of looking p up below a user's root: a name that
// does not exist, runs through a file, loops, or leads out of the root
// through a link (os.Root's refusal carries no errno) is simply not found.
func missing(err error, notFound error, p string) error {
	var errno syscall.Errno
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) || !errors.As(err, &errno) {
		return fmt.Errorf("%w: %s", notFound, quote(p))
	}
	return fmt.Errorf("look up %s: %w", quote(p), err)
}
