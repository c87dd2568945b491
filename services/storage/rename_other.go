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

// linkAt gives the file oldName in the directory from a second name,
// newName in the directory to, by the directories' names.
func linkAt(from *os.File, oldName string, to *os.File, newName string) error {
	return os.Link(filepath.Join(from.Name(), oldName), filepath.Join(to.Name(), newName))
}

// unlinkAt removes the file name from the directory dir, by its name.
func unlinkAt(dir *os.File, name string) error {
	return os.Remove(filepath.Join(dir.Name(), name))
}
