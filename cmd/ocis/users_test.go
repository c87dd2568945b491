package main_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services"
	"github.com/ocis-runtime/ocis/services/users"
)

// startFamily starts `ocis server` and waits until the runtime reports
// every service running (and so registered with the proxy).
func startFamily(t *testing.T) (*env, *proc) {
	t.Helper()
	e := newEnv(t)
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	return e, p
}

func (e *env) usersClient() *users.Client {
	e.t.Helper()
	c, err := users.NewClient("http://"+e.vars["OCIS_USERS_HTTP_ADDR"], nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// adminCtx logs in as the admin that init created.
func (e *env) adminCtx(c *users.Client) context.Context {
	e.t.Helper()
	tok, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: e.vars["OCIS_USERS_ADMIN_PASSWORD"]})
	if err != nil {
		e.t.Fatalf("admin login: %v", err)
	}
	return transport.WithBearer(context.Background(), tok.Token)
}

func TestServerUsersThroughClient(t *testing.T) {
	e, _ := startFamily(t)
	c := e.usersClient()
	admin := e.adminCtx(c)

	me, err := c.Me(admin, endpoint.Empty{})
	if err != nil || me.Username != "admin" || !me.Admin {
		t.Fatalf("me = %+v, %v; want the admin", me, err)
	}
	created, err := c.CreateUser(admin, users.CreateUserRequest{Username: "alice", Password: "wonder1and", DisplayName: "Alice"})
	if err != nil {
		t.Fatalf("create alice: %v", err)
	}
	if created.Username != "alice" || created.DisplayName != "Alice" || created.Admin || created.CreatedAt.IsZero() {
		t.Errorf("created = %+v", created)
	}

	tests := []struct {
		name string
		call func() error
		want error
		code apierr.Code
	}{
		{"wrong password", func() error {
			_, err := c.Login(context.Background(), users.LoginRequest{Username: "alice", Password: "not-her-password1"})
			return err
		}, users.ErrBadCredentials, apierr.CodeUnauthenticated},
		{"unknown user login", func() error {
			_, err := c.Login(context.Background(), users.LoginRequest{Username: "nobody", Password: "wonder1and"})
			return err
		}, users.ErrBadCredentials, apierr.CodeUnauthenticated},
		{"duplicate user", func() error {
			_, err := c.CreateUser(admin, users.CreateUserRequest{Username: "alice", Password: "wonder1and"})
			return err
		}, users.ErrUserExists, apierr.CodeConflict},
		{"empty name", func() error {
			_, err := c.CreateUser(admin, users.CreateUserRequest{Username: "", Password: "wonder1and"})
			return err
		}, users.ErrInvalidName, apierr.CodeInvalidArgument},
		{"over-long name", func() error {
			_, err := c.CreateUser(admin, users.CreateUserRequest{Username: strings.Repeat("a", users.MaxUsernameLen+1), Password: "wonder1and"})
			return err
		}, users.ErrInvalidName, apierr.CodeInvalidArgument},
		{"weak password", func() error {
			_, err := c.CreateUser(admin, users.CreateUserRequest{Username: "bob", Password: "short"})
			return err
		}, users.ErrWeakPassword, apierr.CodeInvalidArgument},
		{"delete unknown", func() error {
			_, err := c.DeleteUser(admin, users.DeleteUserRequest{Username: "nobody"})
			return err
		}, users.ErrUserNotFound, apierr.CodeNotFound},
		{"no token", func() error {
			_, err := c.Me(context.Background(), endpoint.Empty{})
			return err
		}, apierr.ErrUnauthenticated, apierr.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := apierr.CodeOf(err); got != tt.code {
				t.Errorf("code = %s, want %s", got, tt.code)
			}
		})
	}

	t.Run("non-admin is denied admin calls", func(t *testing.T) {
		tok, err := c.Login(context.Background(), users.LoginRequest{Username: "alice", Password: "wonder1and"})
		if err != nil {
			t.Fatal(err)
		}
		alice := transport.WithBearer(context.Background(), tok.Token)
		if _, err := c.ListUsers(alice, endpoint.Empty{}); !errors.Is(err, apierr.ErrPermissionDenied) {
			t.Errorf("list as alice: %v, want permission_denied", err)
		}
		if _, err := c.CreateUser(alice, users.CreateUserRequest{Username: "mallory", Password: "wonder1and"}); !errors.Is(err, apierr.ErrPermissionDenied) {
			t.Errorf("create as alice: %v, want permission_denied", err)
		}
		if _, err := c.DeleteUser(alice, users.DeleteUserRequest{Username: "admin"}); !errors.Is(err, apierr.ErrPermissionDenied) {
			t.Errorf("delete as alice: %v, want permission_denied", err)
		}
	})

	t.Run("list then delete", func(t *testing.T) {
		list, err := c.ListUsers(admin, endpoint.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range list.Users {
			got = append(got, u.Username)
		}
		if want := "admin,alice"; strings.Join(got, ",") != want {
			t.Errorf("users = %v, want %s", got, want)
		}
		if _, err := c.DeleteUser(admin, users.DeleteUserRequest{Username: "alice"}); err != nil {
			t.Fatalf("delete alice: %v", err)
		}
		if _, err := c.Login(context.Background(), users.LoginRequest{Username: "alice", Password: "wonder1and"}); !errors.Is(err, users.ErrBadCredentials) {
			t.Errorf("login after delete: %v, want bad credentials", err)
		}
	})
}

// wireError is the JSON error shape every non-2xx answer has.
type wireError struct {
	Error struct {
		Code    string `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestServerBadInputAnswers(t *testing.T) {
	e, _ := startFamily(t)
	base := "http://" + e.vars["OCIS_USERS_HTTP_ADDR"]
	c := e.usersClient()
	adminTok := strings.TrimPrefix(bearerOf(t, e, c), "Bearer ")

	forgedKeys, _ := auth.NewKeys("another-secret-of-enough-length")
	forged, _, _ := forgedKeys.Sign(auth.Identity{ID: "admin", Name: "admin", Admin: true}, time.Hour)
	realKeys, err := auth.NewKeys(e.configValue("OCIS_JWT_SECRET"))
	if err != nil {
		t.Fatal(err)
	}
	expired, _, _ := realKeys.Sign(auth.Identity{ID: "admin", Name: "admin", Admin: true}, -time.Minute)

	tests := []struct {
		name, method, path, token, body string
		wantStatus                      int
		wantCode                        string
	}{
		{"malformed JSON", "POST", "/api/v1/tokens", "", `{"username":`, 400, "invalid_argument"},
		{"unknown field", "POST", "/api/v1/tokens", "", `{"username":"admin","password":"x","extra":1}`, 400, "invalid_argument"},
		{"trailing data", "POST", "/api/v1/tokens", "", `{"username":"admin","password":"x"} {}`, 400, "invalid_argument"},
		{"empty body", "POST", "/api/v1/users", adminTok, ``, 400, "invalid_argument"},
		{"body over the limit", "POST", "/api/v1/users", adminTok, `{"username":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
		{"missing token", "GET", "/api/v1/users/me", "", ``, 401, "unauthenticated"},
		{"expired token", "GET", "/api/v1/users/me", expired, ``, 401, "unauthenticated"},
		{"forged token", "GET", "/api/v1/users/me", forged, ``, 401, "unauthenticated"},
		{"garbage token", "GET", "/api/v1/users/me", "not.a.jwt", ``, 401, "unauthenticated"},
		{"wrong password", "POST", "/api/v1/tokens", "", `{"username":"admin","password":"wrong-password1"}`, 401, "unauthenticated"},
		{"unknown route", "GET", "/api/v1/nothing", adminTok, ``, 404, "not_found"},
		{"wrong method", "PUT", "/api/v1/users", adminTok, `{}`, 405, "method_not_allowed"},
		{"delete unknown", "DELETE", "/api/v1/users/ghost", adminTok, ``, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, tt.method, base+tt.path, tt.token, tt.body, tt.wantStatus, tt.wantCode)
		})
	}
}

func bearerOf(t *testing.T, e *env, c *users.Client) string {
	t.Helper()
	tok, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: e.vars["OCIS_USERS_ADMIN_PASSWORD"]})
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok.Token
}

func TestMetricsPassLint(t *testing.T) {
	e, _ := startFamily(t)
	c := e.usersClient()
	_ = e.adminCtx(c) // one call, so endpoint series exist
	for _, addr := range []string{e.vars["OCIS_USERS_DEBUG_ADDR"], e.vars["OCIS_RUNTIME_ADDR"]} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s/metrics: %d %v", addr, resp.StatusCode, err)
		}
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		if err != nil || len(problems) > 0 {
			t.Errorf("%s/metrics: lint problems %v, err %v", addr, problems, err)
		}
		if !bytes.Contains(body, []byte(`ocis_endpoint_requests_total{endpoint="login",outcome="ok",service="users"} 1`)) &&
			addr == e.vars["OCIS_USERS_DEBUG_ADDR"] {
			t.Errorf("users metrics lack the login count:\n%s", grepLines(body, "ocis_endpoint_requests_total"))
		}
		// promtool is the reference checker; CI installs it.
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("promtool not installed in CI")
			}
			t.Log("promtool not installed; checked with promlint only")
			continue
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on %s: %v\n%s", addr, err, out)
		}
	}
}

func grepLines(body []byte, substr string) string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestStandaloneUsersAndHealth(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_JWT_SECRET"] = "a-test-secret-of-enough-length"
	e.vars["OCIS_USERS_ADMIN_PASSWORD"] = "admin-pass-1"
	if code, _, stderr := e.run("users", "health"); code != 1 || !strings.Contains(stderr, "users is not healthy") {
		t.Errorf("health before start: exit %d, stderr %q; want 1 and a reason", code, stderr)
	}
	p := e.start("users", "server")
	waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	if code, stdout, stderr := e.run("users", "health"); code != 0 {
		t.Errorf("users health: exit %d, %s %s", code, stdout, stderr)
	}
	c := e.usersClient()
	if _, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: "admin-pass-1"}); err != nil {
		t.Errorf("login on standalone users: %v", err)
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func TestCommandLineErrors(t *testing.T) {
	e := newEnv(t)
	known := strings.Join(services.Catalogue().Names(), ", ")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  []string
	}{
		{"unknown service", []string{"nosuch", "server"}, nil, 2, []string{`unknown command "nosuch"`, "services: " + known}},
		{"unknown flag", []string{"users", "server", "--bogus"}, nil, 2, []string{"-bogus"}},
		{"invalid flag value", []string{"users", "server", "--shutdown-timeout", "soon"}, nil, 1,
			[]string{"--shutdown-timeout", "OCIS_USERS_SHUTDOWN_TIMEOUT", `"soon"`}},
		{"invalid env value", []string{"server"}, map[string]string{"OCIS_USERS_HTTP_ADDR": "nowhere"}, 1,
			[]string{"--users.http-addr", "OCIS_USERS_HTTP_ADDR", `"nowhere"`}},
		{"invalid log level", []string{"server", "--log-level", "loud"}, nil, 1,
			[]string{"--log-level", "OCIS_LOG_LEVEL", `"loud"`}},
		{"admin name no account may have", []string{"server", "--users.admin-user", "Bad/Name"}, nil, 1,
			[]string{"--users.admin-user", "OCIS_USERS_ADMIN_USER", `"Bad/Name"`, "invalid username"}},
		{"admin name no account may have, standalone", []string{"users", "server"}, map[string]string{"OCIS_USERS_ADMIN_USER": "Bad/Name"}, 1,
			[]string{"--admin-user", "OCIS_USERS_ADMIN_USER", `"Bad/Name"`, "invalid username"}},
		{"unknown selected service", []string{"server"}, map[string]string{"OCIS_RUN_SERVICES": "users,nosuch"}, 1,
			[]string{`unknown service "nosuch"`, "known services: " + known}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &env{t: t, dir: e.dir, vars: map[string]string{}}
			for k, v := range e.vars {
				sub.vars[k] = v
			}
			for k, v := range tt.env {
				sub.vars[k] = v
			}
			code, _, stderr := sub.run(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "goroutine ") {
				t.Errorf("stderr has a stack trace: %s", stderr)
			}
		})
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	e := newEnv(t)
	code, stdout, stderr := e.run("init", "--admin-password", "chosen-pass-1")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "config written") {
		t.Errorf("init stdout = %q", stdout)
	}
	info, err := os.Stat(e.dir + "/ocis.env")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	hash := e.configValue("OCIS_USERS_ADMIN_PASSWORD_HASH")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("chosen-pass-1")); err != nil {
		t.Errorf("config's admin password hash does not match the chosen password: %v", err)
	}
	if values, _ := config.ReadFile(e.dir + "/ocis.env"); values["OCIS_USERS_ADMIN_PASSWORD"] != "" {
		t.Error("config file holds the admin password in plain text")
	}
	secret := e.configValue("OCIS_JWT_SECRET")
	code, _, stderr = e.run("init")
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("second init: exit %d, stderr %q; want 1 and a hint at --force", code, stderr)
	}
	if e.configValue("OCIS_JWT_SECRET") != secret {
		t.Error("refused init changed the config")
	}
	if code, _, stderr = e.run("init", "--force"); code != 0 {
		t.Errorf("init --force: exit %d, %s", code, stderr)
	}
	if e.configValue("OCIS_JWT_SECRET") == secret {
		t.Error("init --force kept the old secret")
	}
}

type loginResult struct {
	tok users.Token
	err error
}

// slowLogin starts ocis server with a costly bcrypt and a login under way
// (its in-flight gauge reads 1) and returns the process and the login's
// outcome to come.
func slowLogin(t *testing.T) (*proc, <-chan loginResult) {
	t.Helper()
	e := newEnv(t)
	e.vars["OCIS_USERS_BCRYPT_COST"] = "14"
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	c := e.usersClient()
	done := make(chan loginResult, 1)
	go func() {
		tok, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: e.vars["OCIS_USERS_ADMIN_PASSWORD"]})
		done <- loginResult{tok, err}
	}()
	inFlight := `ocis_endpoint_requests_in_flight{endpoint="login",service="users"} 1`
	waitFor(t, "login in flight", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + e.vars["OCIS_USERS_DEBUG_ADDR"] + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return bytes.Contains(body, []byte(inFlight))
	})
	return p, done
}

// TestSIGTERMDrainsInFlight sends SIGTERM while a login is being computed
// and checks the login still succeeds and the process exits 0.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	p, done := slowLogin(t)
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	r := <-done
	if r.err != nil || r.tok.Token == "" {
		t.Errorf("in-flight login: %+v, %v; want a token", r.tok, r.err)
	}
}

// TestSecondSignalExitsAtOnce sends a second SIGTERM during the graceful
// stop: the process must exit non-zero without waiting for the drain, so
// the in-flight login is cut off.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	p, done := slowLogin(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Pending signals of one kind merge in the kernel: the second is sent
	// once the first has been taken, as an operator's second Ctrl-C is.
	waitFor(t, "the first signal taken", 10*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "signal received")
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of the second signal")
	}
	if code := p.exitCode(); code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if r := <-done; r.err == nil {
		t.Error("the in-flight login succeeded; the second signal should have cut it off")
	}
}

// TestFirstStartInitialises starts ocis server on a data dir that was never
// initialised, as a newcomer would: it must initialise itself, print the
// admin password once, and that password must log in.
func TestFirstStartInitialises(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "OCIS_USERS_ADMIN_PASSWORD")
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	var password string
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "admin password: "); ok {
			password = v
		}
	}
	if password == "" {
		t.Fatalf("first start printed no admin password:\n%s", p.stdout)
	}
	if _, err := e.usersClient().Login(context.Background(), users.LoginRequest{Username: "admin", Password: password}); err != nil {
		t.Errorf("login with the printed password: %v", err)
	}
	// Every secret the nodes share is in the one file, so that copying
	// it is all another node needs.
	for _, key := range []string{"OCIS_JWT_SECRET", "OCIS_USERS_ADMIN_PASSWORD_HASH", "OCIS_RUNTIME_TOKEN",
		"OCIS_NATS_USER", "OCIS_NATS_PASSWORD", "OCIS_NATS_CLUSTER_USER", "OCIS_NATS_CLUSTER_PASSWORD"} {
		if e.configValue(key) == "" {
			t.Errorf("config file has an empty %s", key)
		}
	}
	for _, f := range []string{"ocis.env"} {
		info, err := os.Stat(e.dir + "/" + f)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, info.Mode().Perm(), err)
		}
	}
	if b, _ := os.ReadFile(e.dir + "/ocis.env"); strings.Contains(string(b), password) {
		t.Error("config file holds the admin password in plain text")
	}
}
