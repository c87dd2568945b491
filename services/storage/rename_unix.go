//go:build unix

package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameAt moves oldName in the open directory from to newName in the open
// directory to. Neither path is looked up again from a root, so a link
// planted after the checks cannot redirect the move, and a link at newName
// is replaced, never followed.
func renameAt(from *os.File, oldName string, to *os.File, newName string) error {
	if err := unix.Renameat(int(from.Fd()), oldName, int(to.Fd()), newName); err != nil {
		return &os.LinkError{Op: "renameat", Old: oldName, New: newName, Err: err}
	}
	return nil
}

// linkAt gives the file oldName in the open directory from a second name,
// newName in the open directory to; a link at oldName is not followed.
func linkAt(from *os.File, oldName string, to *os.File, newName string) error {
	if err := unix.Linkat(int(from.Fd()), oldName, int(to.Fd()), newName, 0); err != nil {
		return &os.LinkError{Op: "linkat", Old: oldName, New: newName, Err: err}
	}
	return nil
}

// unlinkAt removes the file name from the open directory dir.
func unlinkAt(dir *os.File, name string) error {
	if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}
