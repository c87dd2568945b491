package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children starts every process of the benchmark and kills the ones still
// running when it ends, whether it ends well, on an error or on a signal.
type children struct {
	mu     sync.Mutex
	live   map[*child]struct{}
	closed bool
}

func newChildren() *children { return &children{live: map[*child]struct{}{}} }

// child is one started process, the leader of its own process group.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed once the process has been reaped
	err  error         // what Wait returned; read it after done
}

// start starts cmd; its stdout and stderr, unless set, go to a bounded tail
// kept for error messages.
func (c *children) start(name string, cmd *exec.Cmd) (*child, error) {
	// Its own process group keeps a terminal's Ctrl-C away from the child,
	// so that only the benchmark decides how it stops, and lets kill reach
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
	ch := &child{name: name, cmd: cmd, out: out, done: make(chan struct{})}
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

// killAll kills the process group of every child still running, refuses new
// ones, and waits a little for them to be reaped.
func (c *children) killAll() {
	c.mu.Lock()
	c.closed = true
	live := make([]*child, 0, len(c.live))
	for ch := range c.live {
		live = append(live, ch)
	}
	c.mu.Unlock()
	for _, ch := range live {
		ch.kill()
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

// kill kills the child's whole process group.
func (ch *child) kill() {
	_ = syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGKILL)
}

// stop sends sig to the child and waits up to grace for the exit; after
// that it kills the group. It returns an error unless the exit was clean.
func (ch *child) stop(sig syscall.Signal, grace time.Duration) error {
	_ = ch.cmd.Process.Signal(sig)
	select {
	case <-ch.done:
	case <-time.After(grace):
		ch.kill()
		<-ch.done
		return fmt.Errorf("%s did not exit within %s of %s; output:\n%s", ch.name, grace, sig, ch.out)
	}
	if ch.err != nil {
		return fmt.Errorf("%s: %w; output:\n%s", ch.name, ch.err, ch.out)
	}
	return nil
}

// run runs a short-lived command to its end, killing it after timeout or
// when ctx ends, and returns its stdout.
func (c *children) run(ctx context.Context, name string, timeout time.Duration, env []string, argv ...string) ([]byte, error) {
	var stdout strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = &stdout
	ch, err := c.start(name, cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-ch.done:
	case <-time.After(timeout):
		ch.kill()
		<-ch.done
		return nil, fmt.Errorf("%s did not finish within %s; output:\n%s", name, timeout, ch.out)
	case <-ctx.Done():
		ch.kill()
		<-ch.done
		return nil, ctx.Err()
	}
	if ch.err != nil {
		return nil, fmt.Errorf("%s: %w; output:\n%s%s", name, ch.err, stdout.String(), ch.out)
	}
	return []byte(stdout.String()), nil
}

// tail keeps the last bytes written to it, enough to explain a failure.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// fileTail returns the last bytes of the file at path, for error messages.
func fileTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailSize {
		_, _ = f.Seek(-tailSize, 2)
	}
	var t tail
	buf := make([]byte, tailSize)
	n, _ := f.Read(buf)
	_, _ = t.Write(buf[:n])
	return t.String()
}

// freeAddrs returns n distinct free 127.0.0.1 addresses. All are held open
// at once while they are picked, so none is handed out twice.
func freeAddrs(n int) ([]string, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// childEnv is this process's environment without any OCIS_ variable, so
// that nothing of the caller's own ocis setup leaks into a measured run.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// awaitStatus polls url every interval until it answers 200. It gives up
// after timeout, when ctx ends, or when exited closes (the server is gone).
// header, when set, is added to every request.
func awaitStatus(ctx context.Context, client *http.Client, url string, header http.Header, interval, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-time.After(interval):
		case <-exited:
			return fmt.Errorf("exited before %s answered 200 (last: %v)", url, last)
		case <-deadline.C:
			return fmt.Errorf("%s did not answer 200 within %s (last: %v)", url, timeout, last)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// newHTTPClient is the benchmark's own client: keep-alive, no proxy from
// the environment, and buffers large enough that the client is not what
// limits a large transfer.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}}
}
