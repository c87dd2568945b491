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
