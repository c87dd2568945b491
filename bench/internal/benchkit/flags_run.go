package benchkit

import (
	"flag"
	"fmt"
	"time"
)

// RunFlags are the flags every benchmark has: -short, -timeout, -keep.
type RunFlags struct {
	Short   bool
	Timeout time.Duration
	Keep    bool
}

// Register defines the flags on fs; shortHelp says what -short runs.
func (f *RunFlags) Register(fs *flag.FlagSet, shortHelp string) {
	fs.BoolVar(&f.Short, "short", false, shortHelp)
	fs.DurationVar(&f.Timeout, "timeout", 10*time.Minute, "bound of the whole run")
	fs.BoolVar(&f.Keep, "keep", false, "keep the temporary directory (binary, data dirs, logs)")
}

// Parse parses args into fs, which holds f's flags and the benchmark's
// own, refuses positional arguments and checks -timeout. It returns the
// names of the flags the command line set, so that -short changes only
// the defaults.
func (f *RunFlags) Parse(fs *flag.FlagSet, args []string) (set map[string]bool, err error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.Timeout <= 0 || f.Timeout > 2*time.Hour {
		return nil, fmt.Errorf("-timeout %s: want more than 0 and at most 2h", f.Timeout)
	}
	set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set, nil
}

// Run is the run these flags describe, for the benchmark name.
func (f RunFlags) Run(name string, args []string) Run {
	return Run{Name: name, Args: args, Short: f.Short, Keep: f.Keep, Timeout: f.Timeout}
}

// WrkFlags are the flags of a benchmark that drives wrk: -d, -c, -t.
type WrkFlags struct {
	Duration time.Duration
	Conns    int
	Threads  int
}

// Register defines the flags on fs, with conns as -c's default.
func (w *WrkFlags) Register(fs *flag.FlagSet, conns int) {
	fs.DurationVar(&w.Duration, "d", 10*time.Second, "duration of one wrk run (whole seconds)")
	fs.IntVar(&w.Conns, "c", conns, "wrk connections")
	fs.IntVar(&w.Threads, "t", 2, "wrk threads")
}

// Validate checks the values as wrk takes them.
func (w WrkFlags) Validate() error {
	switch {
	case w.Duration < time.Second || w.Duration > 5*time.Minute || w.Duration%time.Second != 0:
		return fmt.Errorf("-d %s: want whole seconds from 1s to 5m", w.Duration)
	case w.Conns < 1 || w.Conns > 10000:
		return fmt.Errorf("-c %d: want 1 to 10000", w.Conns)
	case w.Threads < 1 || w.Threads > w.Conns:
		return fmt.Errorf("-t %d: want 1 to -c (%d)", w.Threads, w.Conns)
	}
	return nil
}
