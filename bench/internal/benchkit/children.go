// Package benchkit holds what the benchmarks under bench/ share: child
// processes tracked and killed as whole process groups, free loopback
// addresses, readiness polling, and the statistics and formatting of their
// figure lines.
package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Children starts every process of a benchmark and kills the ones still
// running when it ends, whether it ends well, on an error or on a signal.
type Children struct {
	mu     sync.Mutex
	live   map[*Child]struct{}
	closed bool
}

// NewChildren returns an empty set of children that accepts new ones.
func NewChildren() *Children { return &Children{live: map[*Child]struct{}{}} }

// Child is one started process, the leader of its own process group.
type Child struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed once the process has been reaped
	err  error         // what Wait returned; read it after done
}

// Start starts cmd; its stdout and stderr, unless set, go to a bounded tail
// kept for error messages.
func (c *Children) Start(name string, cmd *exec.Cmd) (*Child, error) {
	// Its own process group keeps a terminal's Ctrl-C away from the child,
	// so that only the benchmark decides how it stops, and lets Kill reach
	// the processes the child starts itself (nginx's workers). The
	// parent-death signal kills the child even when the benchmark itself is
	// killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &tail{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("benchmark is stopping")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch := &Child{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	c.live[ch] = struct{}{}
	go func() {
		ch.err = cmd.Wait()
		// Whatever the leader left behind in its group goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		c.mu.Lock()
		delete(c.live, ch)
		c.mu.Unlock()
		close(ch.done)
	}()
	return ch, nil
}

// KillAll kills the process group of every child still running, refuses new
// ones, and waits a little for them to be reaped.
func (c *Children) KillAll() {
	c.mu.Lock()
	c.closed = true
	live := make([]*Child, 0, len(c.live))
	for ch := range c.live {
		live = append(live, ch)
	}
	c.mu.Unlock()
	for _, ch := range live {
		ch.Kill()
	}
	deadline := time.After(5 * time.Second)
	for _, ch := range live {
		select {
		case <-ch.done:
		case <-deadline:
			return
		}
	}
}

// Run runs a short-lived command to its end, killing it after timeout or
// when ctx ends, and returns how long it ran, from exec to reaped, and its
// stdout.
func (c *Children) Run(ctx context.Context, name string, timeout time.Duration, env []string, argv ...string) (time.Duration, []byte, error) {
	var stdout bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = &stdout
	t0 := time.Now()
	ch, err := c.Start(name, cmd)
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-ch.done:
	case <-time.After(timeout):
		ch.Kill()
		<-ch.done
		return 0, nil, fmt.Errorf("%s did not finish within %s; output:\n%s", name, timeout, ch.out)
	case <-ctx.Done():
		ch.Kill()
		<-ch.done
		return 0, nil, ctx.Err()
	}
	took := time.Since(t0)
	if ch.err != nil {
		return took, nil, fmt.Errorf("%s: %w; output:\n%s%s", name, ch.err, stdout.String(), ch.out)
	}
	return took, stdout.Bytes(), nil
}

// Done is closed once the child has exited and been reaped.
func (ch *Child) Done() <-chan struct{} { return ch.done }

// Output is the last of what the child wrote to the stdout and stderr that
// Start gave it, for error messages.
func (ch *Child) Output() string { return ch.out.String() }

// Kill kills the child's whole process group.
func (ch *Child) Kill() {
	_ = syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGKILL)
}

// Stop sends sig to the child and waits up to grace for the exit; after
// that it kills the group. It returns how long the exit took and an error
// unless the exit was clean.
func (ch *Child) Stop(sig os.Signal, grace time.Duration) (time.Duration, error) {
	t0 := time.Now()
	_ = ch.cmd.Process.Signal(sig)
	select {
	case <-ch.done:
	case <-time.After(grace):
		ch.Kill()
		<-ch.done
		return time.Since(t0), fmt.Errorf("%s did not exit within %s of %s; output:\n%s", ch.name, grace, sig, ch.out)
	}
	took := time.Since(t0)
	if ch.err != nil {
		return took, fmt.Errorf("%s: %w; output:\n%s", ch.name, ch.err, ch.out)
	}
	return took, nil
}

// ChildEnv is this process's environment without any OCIS_ variable, so
// that nothing of the caller's own ocis setup leaks into a measured run.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// StartLogged starts argv with env as a child named name, its output
// appended straight to the file at logPath: through a pipe, this process
// would copy every line of a server under load.
func (c *Children) StartLogged(name, logPath string, env []string, argv ...string) (*Child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// The child holds its own descriptor once started.
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return c.Start(name, cmd)
}
