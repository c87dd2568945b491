package main_test

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify checks the notify protocol of deploy/systemd/ocis.service
// (Type=notify, WatchdogSec=) against a fake NOTIFY_SOCKET: READY=1 only
// once every service runs, watchdog pings at half of WATCHDOG_USEC, and
// STOPPING=1 as soon as SIGTERM begins the stop.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string, timeout time.Duration) string {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed waiting for %s", what)
				}
				if strings.Contains(m, what) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s within %s", what, timeout)
			}
		}
	}

	e := newEnv(t)
	e.vars["NOTIFY_SOCKET"] = sock
	e.vars["WATCHDOG_USEC"] = "200000" // 200ms: a ping every 100ms
	p := e.start("server")
	next("READY=1", 30*time.Second)
	// READY=1 means every service runs: the runtime's /readyz agrees.
	if got := getStatus(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz"); got != http.StatusOK {
		t.Errorf("READY=1 sent while /readyz answers %d", got)
	}
	began := time.Now()
	next("WATCHDOG=1", time.Second)
	next("WATCHDOG=1", time.Second)
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("two watchdog pings took %s, want about 100ms apart", took)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1", 5*time.Second)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("ocis server did not exit within 30s of SIGTERM")
	}
	if code := p.exitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
