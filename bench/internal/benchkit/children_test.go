package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	kids := NewChildren()
	defer kids.KillAll()
	took, out, err := kids.Run(context.Background(), "echo", 10*time.Second, nil, "sh", "-c", "echo hello; echo oops >&2")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "hello\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if took <= 0 {
		t.Errorf("took = %v, want more than 0", took)
	}

	_, _, err = kids.Run(context.Background(), "fail", 10*time.Second, nil, "sh", "-c", "echo why >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "why") {
		t.Errorf("err = %v, want the exit with its stderr", err)
	}
}

// TestStopKillsGroup checks that a child that ignores the signal is killed
// after the grace, with the grandchild it started.
func TestStopKillsGroup(t *testing.T) {
	kids := NewChildren()
	defer kids.KillAll()
	cmd := exec.Command("sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait")
	ch, err := kids.Start("stubborn", cmd)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(5 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		_, _ = fmt.Sscan(ch.Output(), &pid)
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatalf("no grandchild pid in %q", ch.Output())
	}
	if _, err := ch.Stop(syscall.SIGTERM, 100*time.Millisecond); err == nil {
		t.Fatal("Stop of a child that ignores SIGTERM returned no error")
	}
	deadline = time.Now().Add(5 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs after Stop", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := kids.Start("late", exec.Command("true")); err != nil {
		t.Fatalf("Start before KillAll: %v", err)
	}
	kids.KillAll()
	if _, err := kids.Start("after", exec.Command("true")); err == nil {
		t.Error("Start after KillAll returned no error")
	}
}

// running reports whether pid is a live process. A killed one counts as
// gone while it is a zombie: who reaps it, and how soon, is up to pid 1.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
