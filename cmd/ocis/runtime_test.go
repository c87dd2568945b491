package main_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services"
)

// listJSON runs `ocis list --json`.
func (e *env) listJSON() []supervisor.Status {
	e.t.Helper()
	code, stdout, stderr := e.run("list", "--json")
	if code != 0 {
		e.t.Fatalf("ocis list --json: exit %d: %s", code, stderr)
	}
	var out []supervisor.Status
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		e.t.Fatalf("decode list: %v\n%s", err, stdout)
	}
	return out
}

func (e *env) status(name string) supervisor.Status {
	e.t.Helper()
	for _, s := range e.listJSON() {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("ocis list has no %s", name)
	return supervisor.Status{}
}

// waitState waits until name is in state want; while the runtime is not yet
// answering, it keeps waiting.
func (e *env) waitState(name string, want supervisor.State) supervisor.Status {
	e.t.Helper()
	var st supervisor.Status
	waitFor(e.t, name+" "+string(want), 30*time.Second, func() bool {
		code, stdout, _ := e.run("list", "--json")
		if code != 0 {
			return false
		}
		var all []supervisor.Status
		if err := json.Unmarshal([]byte(stdout), &all); err != nil {
			return false
		}
		for _, s := range all {
			if s.Name == name {
				st = s
			}
		}
		return st.State == want
	})
	return st
}

// meAnswers reports whether users answers at all (any HTTP status).
func (e *env) usersAnswers() bool {
	resp, err := http.Get("http://" + e.vars["OCIS_USERS_HTTP_ADDR"] + "/api/v1/users/me")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func TestListKillRunRestartThroughCLI(t *testing.T) {
	e, _ := startFamily(t)

	code, stdout, _ := e.run("list")
	if code != 0 || !strings.Contains(stdout, "SERVICE") || !strings.Contains(stdout, "LAST ERROR") {
		t.Fatalf("ocis list: exit %d\n%s", code, stdout)
	}
	row := lineWith(stdout, "users")
	for _, want := range []string{"running", e.vars["OCIS_USERS_HTTP_ADDR"]} {
		if !strings.Contains(row, want) {
			t.Errorf("list row %q lacks %q", row, want)
		}
	}
	st := e.status("users")
	if st.State != supervisor.StateRunning || st.Node == "" || st.Addr != e.vars["OCIS_USERS_HTTP_ADDR"] || st.Since.IsZero() {
		t.Errorf("list --json users = %+v", st)
	}

	known := strings.Join(services.Catalogue().Names(), ", ")
	steps := []struct {
		args       []string
		wantCode   int
		wantOut    string
		wantState  supervisor.State
		answersNow bool
	}{
		{[]string{"kill", "users"}, 0, "users: stopped", supervisor.StateStopped, false},
		{[]string{"kill", "users"}, 1, "service is stopped, cannot kill it", supervisor.StateStopped, false},
		{[]string{"run", "users"}, 0, "users: running", supervisor.StateRunning, true},
		{[]string{"run", "users"}, 1, "service is running, cannot run it", supervisor.StateRunning, true},
		{[]string{"restart", "users"}, 0, "users: running", supervisor.StateRunning, true},
		{[]string{"kill", "nosuch"}, 1, `unknown service "nosuch"; known services: ` + known, supervisor.StateRunning, true},
		{[]string{"kill"}, 2, "kill takes one service name", supervisor.StateRunning, true},
	}
	for _, s := range steps {
		t.Run(strings.Join(s.args, " "), func(t *testing.T) {
			code, stdout, stderr := e.run(s.args...)
			if code != s.wantCode || !strings.Contains(stdout+stderr, s.wantOut) {
				t.Errorf("exit %d, output %q %q; want %d and %q", code, stdout, stderr, s.wantCode, s.wantOut)
			}
			if got := e.status("users").State; got != s.wantState {
				t.Errorf("state = %s, want %s", got, s.wantState)
			}
			if got := e.usersAnswers(); got != s.answersNow {
				t.Errorf("users answers = %v, want %v", got, s.answersNow)
			}
		})
	}
}

func lineWith(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestControlAPIAnswers(t *testing.T) {
	e, _ := startFamily(t)
	base := "http://" + e.vars["OCIS_RUNTIME_ADDR"]
	token := e.configValue("OCIS_RUNTIME_TOKEN")
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantCode                  string
	}{
		{"no token", "POST", "/api/v1/services/users/kill", "", 401, "unauthenticated"},
		{"wrong token", "POST", "/api/v1/services/users/kill", "wrong", 401, "unauthenticated"},
		{"wrong token list", "GET", "/api/v1/services", "wrong", 401, "unauthenticated"},
		{"unknown service", "POST", "/api/v1/services/nosuch/kill", token, 404, "not_found"},
		{"run on running", "POST", "/api/v1/services/users/run", token, 409, "conflict"},
		{"unknown verb", "POST", "/api/v1/services/users/explode", token, 404, "not_found"},
		{"wrong method", "GET", "/api/v1/services/users/kill", token, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, tt.method, base+tt.path, tt.token, "", tt.wantStatus, tt.wantCode)
			if st := e.status("users").State; st != supervisor.StateRunning {
				t.Errorf("users is %s after a refused call, want running", st)
			}
		})
	}

	t.Run("wrong token through the CLI", func(t *testing.T) {
		sub := *e
		sub.vars = map[string]string{"OCIS_RUNTIME_TOKEN": "wrong"}
		for k, v := range e.vars {
			sub.vars[k] = v
		}
		sub.vars["OCIS_RUNTIME_TOKEN"] = "wrong"
		code, _, stderr := sub.run("kill", "users")
		if code != 1 || !strings.Contains(stderr, "refused the token") {
			t.Errorf("exit %d, stderr %q; want 1 and a token hint", code, stderr)
		}
	})

	t.Run("readyz and metrics follow the states", func(t *testing.T) {
		if got := getStatus(t, base+"/readyz"); got != 200 {
			t.Errorf("runtime /readyz = %d with all running, want 200", got)
		}
		if code, _, stderr := e.run("kill", "users"); code != 0 {
			t.Fatalf("kill: %s", stderr)
		}
		if got := getStatus(t, base+"/readyz"); got != 503 {
			t.Errorf("runtime /readyz = %d with users stopped, want 503", got)
		}
		metrics := getBody(t, base+"/metrics")
		for _, want := range []string{
			`ocis_service_state{service="users",state="stopped"} 1`,
			`ocis_service_state{service="users",state="running"} 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("runtime metrics lack %s", want)
			}
		}
	})
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestCLIWithoutRuntime(t *testing.T) {
	e := newEnv(t) // its runtime address is free: nothing listens there
	for _, args := range [][]string{{"list"}, {"kill", "users"}, {"run", "users"}, {"restart", "users"}} {
		code, stdout, stderr := e.run(args...)
		want := "no runtime answers at " + e.vars["OCIS_RUNTIME_ADDR"]
		if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "ocis server") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", args, code, stderr, want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 || stdout != "" {
			t.Errorf("%v: want one line on stderr, got %q / %q", args, stdout, stderr)
		}
	}
}

// TestTakenPortBacksOffAndRecovers occupies users' port before the server
// starts: users must go to backoff, leave the runtime serving, and come up
// by itself once the port is freed, under the default restart policy.
func TestTakenPortBacksOffAndRecovers(t *testing.T) {
	e := newEnv(t)
	blocker, err := net.Listen("tcp", e.vars["OCIS_USERS_HTTP_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	e.start("server")
	var st supervisor.Status
	waitFor(t, "users in backoff", 30*time.Second, func() bool {
		code, stdout, _ := e.run("list", "--json")
		if code != 0 {
			return false
		}
		var all []supervisor.Status
		_ = json.Unmarshal([]byte(stdout), &all)
		for _, s := range all {
			if s.Name == "users" && s.Restarts > 0 {
				st = s
				return true
			}
		}
		return false
	})
	if !strings.Contains(st.LastError, "address already in use") {
		t.Errorf("last error = %q, want the taken port", st.LastError)
	}
	blocker.Close()
	e.waitState("users", supervisor.StateRunning)
	if !e.usersAnswers() {
		t.Error("users does not answer after recovering")
	}
}

// TestCrashLoopFailsUntilRun keeps users' port taken until the supervisor
// gives up, then frees it: users stays failed until `ocis run users`.
func TestCrashLoopFailsUntilRun(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_RUNTIME_MAX_FAILURES"] = "2"
	blocker, err := net.Listen("tcp", e.vars["OCIS_USERS_HTTP_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	e.start("server")
	st := e.waitState("users", supervisor.StateFailed)
	if st.Restarts != 2 || !strings.Contains(st.LastError, "3 failures") {
		t.Errorf("failed status = %+v; want 2 restarts and the failure count", st)
	}
	code, stdout, _ := e.run("list")
	if row := lineWith(stdout, "users"); code != 0 || !strings.Contains(row, "failed") || !strings.Contains(row, "address already in use") {
		t.Errorf("list row %q; want failed with the reason", row)
	}
	blocker.Close()
	if got := e.status("users").State; got != supervisor.StateFailed {
		t.Errorf("failed service moved to %s by itself", got)
	}
	if code, stdout, stderr := e.run("run", "users"); code != 0 || !strings.Contains(stdout, "users: running") {
		t.Fatalf("ocis run users: exit %d, %s %s", code, stdout, stderr)
	}
	if !e.usersAnswers() {
		t.Error("users does not answer after ocis run")
	}
}
