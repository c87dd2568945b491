package benchkit

import (
	"os/exec"
	"testing"
	"time"
)

// TestGroupCPU checks that a busy child's CPU time and memory are found
// through its process group, grandchildren included.
func TestGroupCPU(t *testing.T) {
	kids := NewChildren()
	defer kids.KillAll()
	// A shell that spins in a grandchild: the group's time is the
	// grandchild's, the leader itself only waits.
	ch, err := kids.Start("busy", exec.Command("sh", "-c", "sh -c 'while :; do :; done' & wait"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := GroupCPU(ch.Pid())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	after, err := GroupCPU(ch.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 50*time.Millisecond {
		t.Errorf("a spinning group used %s of CPU in 300ms, want at least 50ms", got)
	}
	now, peak, err := GroupRSS(ch.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if now <= 0 || peak < now {
		t.Errorf("GroupRSS = %d now, %d peak; want more than 0 and peak >= now", now, peak)
	}
	if _, err := GroupCPU(1 << 30); err == nil {
		t.Error("GroupCPU of a group that does not exist returned no error")
	}
}
