//go:build !unix

package storage

import (
	"os"
	"path/filepath"
)

// renameAt moves oldName in the directory from to newName in the directory
// to. Without renameat the move goes by the directories' names, which were
// resolved inside the user's root when they were opened.
func renameAt(from *os.File, oldName string, to *os.File, newName string) error {
	return os.Rename(filepath.Join(from.Name(), oldName), filepath.Join(to.Name(), newName))
}
