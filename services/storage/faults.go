package storage

// step names one step of the write path, where a test can make it fail.
type step string

// The steps of an upload, in the order they run.
const (
	stepCreate  step = "create"  // the upload file in tmp/
	stepWrite   step = "write"   // each write to it
	stepSync    step = "sync"    // its fsync
	stepMkdir   step = "mkdir"   // each parent directory created
	stepKeep    step = "keep"    // the second name that keeps a replaced file
	stepRename  step = "rename"  // the upload into place
	stepSyncDir step = "syncdir" // the fsync of the directory it moved into
	stepCommit  step = "commit"  // the metadata transaction, after its writes
)

// faults fails steps of the write path: the tests set it to prove that a
// failure at any step leaves the tree and the metadata as they were. It is
// nil in service, where at costs one comparison.
type faults func(step) error

func (f faults) at(s step) error {
	if f == nil {
		return nil
	}
	return f(s)
}
