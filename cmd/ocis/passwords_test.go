package main_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/users"
)

// startFamilyIn starts `ocis server` in e and waits until every service
// it runs is running.
func startFamilyIn(t *testing.T, e *env) *proc {
	t.Helper()
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	return p
}

// runStdin runs ocis to completion with stdin as its standard input (not
// a terminal, so a password is read from it).
func (e *env) runStdin(stdin string, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("run ocis %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

func (e *env) login(c *users.Client, name, password string) (string, error) {
	tok, err := c.Login(context.Background(), users.LoginRequest{Username: name, Password: password})
	return tok.Token, err
}

// TestPasswordChangeAndReset: a change needs the current password and a
// strong new one, and withdraws every older token at once, in users and
// in storage alike; an admin resets another account's password.
func TestPasswordChangeAndReset(t *testing.T) {
	e, _ := startFamily(t)
	c := e.usersClient()
	admin := e.adminCtx(c)
	if _, err := c.CreateUser(admin, users.CreateUserRequest{Username: "alice", Password: "wonder1and"}); err != nil {
		t.Fatal(err)
	}
	old, err := e.login(c, "alice", "wonder1and")
	if err != nil {
		t.Fatal(err)
	}
	usersURL := "http://" + e.vars["OCIS_USERS_HTTP_ADDR"]
	storageURL := "http://" + e.vars["OCIS_STORAGE_HTTP_ADDR"]
	me := usersURL + "/api/v1/users/me/password"
	expectErrorReason(t, "PUT", me, old, `{"current":"wrong-guess-1","new":"looking-glass-2"}`, 401, "unauthenticated", "users.bad_credentials")
	expectErrorReason(t, "PUT", me, old, `{"current":"wonder1and","new":"short"}`, 400, "invalid_argument", "users.weak_password")
	expectErrorReason(t, "PUT", me, "", `{"current":"wonder1and","new":"looking-glass-2"}`, 401, "unauthenticated", "")
	expectErrorReason(t, "PUT", me, old, `{"current":"wonder1and","new":"looking-glass-2","extra":1}`, 400, "invalid_argument", "")
	if got := putJSON(t, me, old, `{"current":"wonder1and","new":"looking-glass-2"}`); got != http.StatusNoContent {
		t.Fatalf("change: %d, want 204", got)
	}
	expectErrorReason(t, "GET", usersURL+"/api/v1/users/me", old, "", 401, "unauthenticated", "auth.token_revoked")
	expectErrorReason(t, "GET", storageURL+"/api/v1/files/", old, "", 401, "unauthenticated", "auth.token_revoked")
	if _, err := e.login(c, "alice", "wonder1and"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("login with the old password: %v, want bad credentials", err)
	}
	fresh, err := e.login(c, "alice", "looking-glass-2")
	if err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := c.Me(transport.WithBearer(context.Background(), fresh), endpoint.Empty{}); err != nil {
		t.Errorf("me with the new token: %v", err)
	}

	// An admin's reset: no current password, the same revocation.
	reset := usersURL + "/api/v1/users/alice/password"
	expectErrorReason(t, "PUT", reset, fresh, `{"new":"by-alice-3"}`, 403, "permission_denied", "")
	adminToken, err := e.login(c, "admin", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	expectErrorReason(t, "PUT", usersURL+"/api/v1/users/nobody/password", adminToken, `{"new":"by-admin-4"}`, 404, "not_found", "users.user_not_found")
	expectErrorReason(t, "PUT", reset, adminToken, `{"new":"weak"}`, 400, "invalid_argument", "users.weak_password")
	if got := putJSON(t, reset, adminToken, `{"new":"by-admin-4"}`); got != http.StatusNoContent {
		t.Fatalf("admin reset: %d, want 204", got)
	}
	expectErrorReason(t, "GET", usersURL+"/api/v1/users/me", fresh, "", 401, "unauthenticated", "auth.token_revoked")
	if _, err := e.login(c, "alice", "by-admin-4"); err != nil {
		t.Errorf("login after the admin's reset: %v", err)
	}
}

func putJSON(t *testing.T, url, token, body string) int {
	t.Helper()
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestResetPasswordCLI is the operator's task (c): recover a lost admin
// password with `ocis users reset-password`, the server running (through
// the runtime) and stopped (on the store), the password read from stdin.
func TestResetPasswordCLI(t *testing.T) {
	e := newEnv(t)
	p := startFamilyIn(t, e)
	c := e.usersClient()
	old, err := e.login(c, "admin", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}

	code, _, stderr := e.runStdin("weakpass\n", "users", "reset-password")
	if code != 1 || !strings.Contains(stderr, "weak password") {
		t.Errorf("weak password: exit %d, %q", code, stderr)
	}
	code, _, stderr = e.runStdin("", "users", "reset-password")
	if code != 1 || !strings.Contains(stderr, "no password on stdin") {
		t.Errorf("empty stdin: exit %d, %q", code, stderr)
	}
	code, _, stderr = e.runStdin("found-again-5\n", "users", "reset-password", "--user", "nobody")
	if code != 1 || !strings.Contains(stderr, "user not found") {
		t.Errorf("unknown user: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := e.runStdin("found-again-5\n", "users", "reset-password")
	if code != 0 || !strings.Contains(stdout, "password of admin set through the running server") {
		t.Fatalf("reset with the server running: exit %d, %q %q", code, stdout, stderr)
	}
	expectErrorReason(t, "GET", "http://"+e.vars["OCIS_USERS_HTTP_ADDR"]+"/api/v1/users/me", old, "", 401, "unauthenticated", "auth.token_revoked")
	if _, err := e.login(c, "admin", "found-again-5"); err != nil {
		t.Errorf("login after the reset: %v", err)
	}

	// The server stopped: the store itself, and the next start refuses
	// the tokens of before.
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	code, stdout, stderr = e.runStdin("offline-again-6\n", "users", "reset-password", "--user", "admin")
	if code != 0 || !strings.Contains(stdout, "in the account store") {
		t.Fatalf("reset with the server stopped: exit %d, %q %q", code, stdout, stderr)
	}
	startFamilyIn(t, e)
	if _, err := e.login(c, "admin", "found-again-5"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("login with the password of before: %v, want bad credentials", err)
	}
	tok, err := e.login(c, "admin", "offline-again-6")
	if err != nil {
		t.Fatalf("login with the password set offline: %v", err)
	}
	keys, err := auth.NewKeys(e.configValue("OCIS_JWT_SECRET"))
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := keys.Verify(tok); err != nil || claims.Gen != 3 {
		t.Errorf("token after two resets: %+v, %v; want generation 3", claims, err)
	}
}

// TestInitPasswordRule: init refuses a weak admin password, and says that
// an existing admin keeps its password and how to reset it instead.
func TestInitPasswordRule(t *testing.T) {
	e := newEnv(t)
	code, _, stderr := e.run("init", "--admin-password", "short")
	if code != 1 || !strings.Contains(stderr, "--admin-password: weak password") {
		t.Errorf("weak: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := e.run("init", "--admin-password", "strong-enough-7")
	if code != 0 || strings.Contains(stdout, "note:") {
		t.Fatalf("init: exit %d, %q %q", code, stdout, stderr)
	}
	p := startFamilyIn(t, e)
	p.stop(t, 20*time.Second)
	code, stdout, _ = e.run("init", "--force", "--admin-password", "strong-enough-8")
	store := filepath.Join(e.dir, "users", "users.db")
	if code != 0 || !strings.Contains(stdout, store) || !strings.Contains(stdout, "keeps its current password") ||
		!strings.Contains(stdout, "ocis users reset-password") {
		t.Errorf("init over an existing store: exit %d, %q", code, stdout)
	}
}
