package storage

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Limits of names, those of common Linux file systems: a longer name could
// not be stored, so it is refused before anything touches the disk.
const (
	MaxSegmentLen = 255
	MaxPathLen    = 4096
)

// checkPath reports why p cannot name an entry below a user's root. A path
// is relative and "/"-separated; a path that needs cleaning is refused, never
// cleaned, so that what a client asked for is what it gets or an error.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: path is empty", ErrInvalidPath)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: path is %d bytes, over the limit of %d", ErrInvalidPath, len(p), MaxPathLen)
	case p[0] == '/':
		return fmt.Errorf("%w: %s is absolute; paths are relative to your root", ErrInvalidPath, quote(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		if err := checkSegment(seg); err != nil {
			return err
		}
	}
	return nil
}

// checkSegment reports why s cannot be one name in a path.
func checkSegment(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty segment (\"//\" or a \"/\" at either end)", ErrInvalidPath)
	case s == "." || s == "..":
		return fmt.Errorf("%w: %q segment", ErrInvalidPath, s)
	case strings.ContainsRune(s, '/'):
		return fmt.Errorf("%w: %s holds a \"/\"", ErrInvalidPath, quote(s))
	case len(s) > MaxSegmentLen:
		return fmt.Errorf("%w: segment of %d bytes, over the limit of %d", ErrInvalidPath, len(s), MaxSegmentLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: segment %s is not UTF-8", ErrInvalidPath, quote(s))
	}
	for _, r := range s {
		switch {
		case r == 0:
			return fmt.Errorf("%w: NUL byte", ErrInvalidPath)
		case r == '\\':
			// A backslash is a separator to some clients and file
			// systems; refusing it keeps one meaning for every name.
			return fmt.Errorf("%w: backslash in %s", ErrInvalidPath, quote(s))
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("%w: control character in %s", ErrInvalidPath, quote(s))
		}
	}
	return nil
}

// checkDir validates the path of a directory to list: "" is the root, any
// other may end in one "/". It returns the path without that slash.
func checkDir(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	dir := strings.TrimSuffix(p, "/")
	if err := checkPath(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// parentOf is the directory holding p, "." for the root.
func parentOf(p string) string {
	return path.Dir(p)
}

// join appends name to the directory dir ("" for the root).
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// quote shows p in a message, cut short so that an error never echoes a
// 4 KiB path.
func quote(p string) string {
	const keep = 64
	if len(p) > keep {
		return fmt.Sprintf("%q…", p[:keep])
	}
	return fmt.Sprintf("%q", p)
}
