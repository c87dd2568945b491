package main_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// TestLogsThroughCLI reads a service's recent lines and follows new ones.
func TestLogsThroughCLI(t *testing.T) {
	e, _ := startFamily(t)

	code, stdout, stderr := e.run("logs", "-n", "5", "users")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != 0 || len(lines) != 5 {
		t.Fatalf("ocis logs -n 5 users: exit %d, %d lines:\n%s%s", code, len(lines), stdout, stderr)
	}
	for _, l := range lines {
		if !strings.Contains(l, "service=users") {
			t.Errorf("line without service=users: %q", l)
		}
	}

	// -f: a line logged after the follow started arrives, and SIGTERM
	// ends the follow with exit 0.
	follow := e.start("logs", "-f", "-n", "0", "users")
	time.Sleep(300 * time.Millisecond) // the follow's request is under way
	if code, _, stderr := e.run("restart", "users"); code != 0 {
		t.Fatalf("restart users: %s", stderr)
	}
	waitFor(t, "the restart's lines in the follow", 10*time.Second, func() bool {
		return strings.Contains(follow.stdout.String(), "from=stopping to=starting")
	})
	for _, l := range strings.Split(strings.TrimSpace(follow.stdout.String()), "\n") {
		if !strings.Contains(l, "service=users") {
			t.Errorf("followed line without service=users: %q", l)
		}
	}
	if code := follow.stop(t, 5*time.Second); code != 0 {
		t.Errorf("follow ended with exit %d after SIGTERM, want 0", code)
	}

	code, _, stderr = e.run("logs", "nosuch")
	if code != 1 || !strings.Contains(stderr, `unknown service "nosuch"`) || !strings.Contains(stderr, "users") {
		t.Errorf("logs nosuch: exit %d, %q; want 1 naming the known services", code, stderr)
	}
	if code, _, _ := e.run("logs"); code != 2 {
		t.Errorf("logs without a service: exit %d, want 2", code)
	}
}

func TestLogsAPI(t *testing.T) {
	e, _ := startFamily(t)
	base := "http://" + e.vars["OCIS_RUNTIME_ADDR"] + "/api/v1/services/"
	token := e.configValue("OCIS_RUNTIME_TOKEN")
	for _, tt := range []struct {
		name, path, token string
		wantStatus        int
		wantCode          string
	}{
		{"no token", "users/logs", "", 401, "unauthenticated"},
		{"unknown service", "nosuch/logs", token, 404, "not_found"},
		{"lines not a number", "users/logs?lines=abc", token, 400, "invalid_argument"},
		{"too many lines", "users/logs?lines=1001", token, 400, "invalid_argument"},
		{"negative lines", "users/logs?lines=-1", token, 400, "invalid_argument"},
		{"bad follow", "users/logs?follow=maybe", token, 400, "invalid_argument"},
		{"a query that does not parse", "users/logs?lines=%zz", token, 400, "invalid_argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, "GET", base+tt.path, tt.token, "", tt.wantStatus, tt.wantCode)
		})
	}
	req, _ := http.NewRequest("GET", base+"runtime/logs?lines=3", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("runtime logs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestBackoffExplainedByListAndLogs is the operator's task (b): a service
// is in backoff; `ocis list` says why, with its age, and `ocis logs`
// shows what led to it. run refuses it, restart exits 1 naming the
// reason, status is not ok until the cause is gone.
func TestBackoffExplainedByListAndLogs(t *testing.T) {
	e := newEnv(t)
	// A long first wait keeps users in backoff while the test looks.
	e.vars["OCIS_RUNTIME_BACKOFF_MIN"] = "3s"
	e.vars["OCIS_RUNTIME_BACKOFF_MAX"] = "3s"
	blocker, err := net.Listen("tcp", e.vars["OCIS_USERS_HTTP_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	e.start("server")
	e.waitState("users", supervisor.StateBackoff)

	code, stdout, _ := e.run("list")
	row := lineWith(stdout, "users")
	if code != 0 || !strings.Contains(row, "backoff") || !strings.Contains(row, "ago: ") || !strings.Contains(row, "address already in use") {
		t.Errorf("list row %q; want backoff, the error's age and the reason", row)
	}
	code, stdout, _ = e.run("logs", "users")
	if code != 0 || !strings.Contains(stdout, "address already in use") || !strings.Contains(stdout, "to=backoff") {
		t.Errorf("ocis logs users: exit %d, want the failure and the move to backoff:\n%s", code, stdout)
	}
	code, stdout, stderr := e.run("status")
	if code != 1 || !strings.Contains(stderr, "not ok") || !strings.Contains(stderr, "users backoff") || strings.Count(strings.TrimSpace(stdout+stderr), "\n") != 0 {
		t.Errorf("status: exit %d, %q %q; want 1 and one line naming users", code, stdout, stderr)
	}
	code, _, stderr = e.run("restart", "users")
	if code != 1 || !strings.Contains(stderr, "restart users: it is backoff, not running") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("restart users in backoff: exit %d, %q; want 1 naming users and the reason", code, stderr)
	}

	blocker.Close()
	st := e.waitState("users", supervisor.StateRunning)
	if st.LastError == "" || st.LastErrorAt.IsZero() || !st.LastErrorAt.Before(st.Since) || st.Health != "ready" {
		t.Errorf("recovered status %+v; want the old error, its time before since, and ready", st)
	}
	_, stdout, _ = e.run("list")
	if row := lineWith(stdout, "users"); !strings.Contains(row, "(recovered)") {
		t.Errorf("list row after recovery %q; want the error marked recovered", row)
	}
	if code, stdout, stderr := e.run("status"); code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Errorf("status after recovery: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestRunThatFailsExitsOne: with no failure allowed, a start that fails
// marks the service failed, and `ocis run` says so with exit 1.
func TestRunThatFailsExitsOne(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_RUNTIME_MAX_FAILURES"] = "0"
	blocker, err := net.Listen("tcp", e.vars["OCIS_USERS_HTTP_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	e.start("server")
	e.waitState("users", supervisor.StateFailed)
	code, stdout, stderr := e.run("run", "users")
	if code != 1 || !strings.Contains(stdout, "users: failed") || !strings.Contains(stderr, "run users: it is failed, not running") ||
		!strings.Contains(stderr, "address already in use") {
		t.Errorf("run users: exit %d, %q %q; want 1 naming users, its state and the reason", code, stdout, stderr)
	}
}
