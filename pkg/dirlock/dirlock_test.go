package dirlock_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/dirlock"
)

func TestSecondAcquireIsRefusedNamingTheHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := dirlock.Acquire(dir, "ocis server")
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files: a second open in this process
	// stands for another process.
	_, err = dirlock.Acquire(dir, "ocis users server")
	var lerr *dirlock.LockedError
	if !errors.As(err, &lerr) || !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("second Acquire = %v, want a LockedError", err)
	}
	if lerr.PID != os.Getpid() || lerr.Holder != "ocis server" {
		t.Errorf("holder = %d %q, want %d ocis server", lerr.PID, lerr.Holder, os.Getpid())
	}
	if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), dir) {
		t.Errorf("message %q does not name the pid and the dir", err)
	}
	l.Release()
	again, err := dirlock.Acquire(dir, "ocis server")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestAcquireAllTakesNoneOnRefusal(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	held, err := dirlock.Acquire(b, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if _, err := dirlock.AcquireAll("me", a, b); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("AcquireAll = %v, want ErrLocked", err)
	}
	// a was released again.
	l, err := dirlock.Acquire(a, "me")
	if err != nil {
		t.Fatalf("a still locked after a refused AcquireAll: %v", err)
	}
	l.Release()
}

// TestLockDiesWithTheProcess: a holder killed without a word leaves a
// lock file that locks no one out.
func TestLockDiesWithTheProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1) to hold a lock from another process")
	}
	dir := t.TempDir()
	cmd := exec.Command("flock", "-x", filepath.Join(dir, dirlock.FileName), "sleep", "30")
	// flock(1) runs sleep in a child that holds the lock too: the whole
	// process group is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	locked := false
	for range 200 {
		l, err := dirlock.Acquire(dir, "me")
		if err != nil {
			locked = true
			break
		}
		l.Release()
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if !locked {
		t.Skip("flock(1) never held the lock")
	}
	// The kernel drops the lock once the killed child has exited, which
	// Wait (of flock(1) only) does not wait for.
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := dirlock.Acquire(dir, "me")
		if err == nil {
			l.Release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock of a killed process still refuses: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
