package runtime

import (
	"fmt"
	goruntime "runtime"
)

// Version and Commit are set at build time with -ldflags -X.
var (
	Version = "dev"
	Commit  = "unknown"
)

// VersionString is what `ocis version` prints.
func VersionString() string {
	return fmt.Sprintf("ocis %s (commit %s, %s)", Version, Commit, goruntime.Version())
}
