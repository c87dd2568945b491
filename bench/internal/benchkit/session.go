package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Session is what every benchmark run shares: a temporary directory for
// binaries, data dirs and logs, the children it started, their
// environment, and where figures (Out) and progress (Log) go.
type Session struct {
	Tmp  string
	Kids *Children
	Env  []string
	Out  io.Writer
	Log  io.Writer
}

// Run is one benchmark run of the command ./bench/<Name>.
type Run struct {
	Name    string        // the directory under bench/, e.g. "events"
	Args    []string      // the command line, printed with the figures
	Short   bool          // printed in the header
	Keep    bool          // keep the temporary directory
	Timeout time.Duration // bound of the whole run
	Stdout  io.Writer
	Stderr  io.Writer
}

// FlagsFailed is the exit status of a run whose flags did not parse: 0
// for -h, 2 otherwise, with the error said on stderr.
func FlagsFailed(name string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s bench: %v\n", name, err)
	return 2
}

// Measure runs measure in a new Session and returns the exit status: it
// makes the temporary directory, bounds the run by r.Timeout, stops
// cleanly on SIGINT/SIGTERM (WatchSignals), prints the machine before the
// figures and the command line after them, and always kills the children
// and removes the directory unless r.Keep.
func (r Run) Measure(measure func(context.Context, *Session) error) int {
	label := r.Name + " bench"
	fail := func(err error) int {
		fmt.Fprintf(r.Stderr, "%s: %v\n", label, err)
		return 1
	}
	s := &Session{Kids: NewChildren(), Env: ChildEnv(), Out: r.Stdout, Log: r.Stderr}
	var err error
	if s.Tmp, err = os.MkdirTemp("", "ocis-bench-"+r.Name+"-"); err != nil {
		return fail(err)
	}
	cleanup := func() {
		s.Kids.KillAll()
		if r.Keep {
			fmt.Fprintf(r.Stderr, "%s: kept %s\n", label, s.Tmp)
			return
		}
		_ = os.RemoveAll(s.Tmp)
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	defer WatchSignals(ctx, cancel, label, r.Stderr, cleanup)()

	fmt.Fprintf(r.Stdout, "%s: %d CPUs, GOMAXPROCS=%d, %s %s/%s, short=%t\n",
		label, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, r.Short)
	err = measure(ctx, s)
	fmt.Fprintf(r.Stdout, "command: go run ./bench/%s %s\n", r.Name, strings.Join(r.Args, " "))
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// Say why the run was cut: its bound, or a signal.
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return fail(err)
	}
	return 0
}
