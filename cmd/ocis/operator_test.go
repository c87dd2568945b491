package main_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appendConfig adds lines to the config file ocis init wrote.
func (e *env) appendConfig(lines ...string) {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, "ocis.env"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			e.t.Fatal(err)
		}
	}
}

// initData runs `ocis init`, as a first start would.
func (e *env) initData() {
	e.t.Helper()
	if code, _, stderr := e.run("init"); code != 0 {
		e.t.Fatalf("ocis init: exit %d: %s", code, stderr)
	}
}

// listening reports whether anything accepts connections on one of the
// test's addresses.
func (e *env) listening() []string {
	var out []string
	for k, v := range e.vars {
		if !strings.HasSuffix(k, "_ADDR") {
			continue
		}
		if c, err := net.DialTimeout("tcp", v, 100*time.Millisecond); err == nil {
			c.Close()
			out = append(out, k)
		}
	}
	return out
}

// TestInvalidSettingsStopBeforeAnythingStarts: every invalid setting ends
// the command at once with exit 1, naming the flag, the env var, the value
// and where it came from; no service starts and nothing listens.
func TestInvalidSettingsStopBeforeAnythingStarts(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file []string // lines added to ocis.env
		want []string
		// notWant must not appear (a secret's value).
		notWant string
	}{
		{name: "negative quota from the environment", args: []string{"server"}, env: map[string]string{"OCIS_STORAGE_QUOTA": "-5"},
			want: []string{"--storage.quota", "OCIS_STORAGE_QUOTA", `"-5"`, "set by env"}},
		{name: "negative quota, storage alone", args: []string{"storage", "server"}, env: map[string]string{"OCIS_STORAGE_QUOTA": "-5"},
			want: []string{"--quota", "OCIS_STORAGE_QUOTA", `"-5"`, "set by env"}},
		{name: "quota with a unit no one knows, from the file", args: []string{"server"}, file: []string{"OCIS_STORAGE_QUOTA=10XB"},
			want: []string{"--storage.quota", "OCIS_STORAGE_QUOTA", `"10XB"`, "ocis.env", "10MB or 1GiB"}},
		{name: "bcrypt cost below the minimum", args: []string{"server", "--users.bcrypt-cost=3"},
			want: []string{"--users.bcrypt-cost", "OCIS_USERS_BCRYPT_COST", `"3"`, "set by flag", "4 to 31"}},
		{name: "bcrypt cost, users alone", args: []string{"users", "server", "--bcrypt-cost=32"},
			want: []string{"--bcrypt-cost", "OCIS_USERS_BCRYPT_COST", `"32"`, "set by flag"}},
		{name: "short JWT secret", args: []string{"server"}, env: map[string]string{"OCIS_JWT_SECRET": "tiny-secret"},
			want: []string{"--jwt-secret", "OCIS_JWT_SECRET", "set by env", "16 bytes", "redacted"}, notWant: "tiny-secret"},
		{name: "short JWT secret, proxy alone", args: []string{"proxy", "server"}, env: map[string]string{"OCIS_JWT_SECRET": "tiny-secret"},
			want: []string{"--jwt-secret", "OCIS_JWT_SECRET", "set by env"}, notWant: "tiny-secret"},
		{name: "negative max failures", args: []string{"server", "--runtime.max-failures=-1"},
			want: []string{"--runtime.max-failures", "OCIS_RUNTIME_MAX_FAILURES", `"-1"`, "set by flag"}},
		{name: "negative duration", args: []string{"server"}, env: map[string]string{"OCIS_RUNTIME_BACKOFF_MAX": "-1s"},
			want: []string{"--runtime.backoff-max", "OCIS_RUNTIME_BACKOFF_MAX", `"-1s"`, "set by env", "positive"}},
		{name: "weak admin password in the config", args: []string{"server"}, env: map[string]string{"OCIS_USERS_ADMIN_PASSWORD": "short"},
			want: []string{"--users.admin-password", "OCIS_USERS_ADMIN_PASSWORD", "set by env", "weak password"}},
		{name: "misspelt key in ocis.env", args: []string{"server"}, file: []string{"OCIS_STORAGE_QOUTA=10MB"},
			want: []string{"unknown key OCIS_STORAGE_QOUTA", "ocis.env", "did you mean OCIS_STORAGE_QUOTA?"}},
		{name: "misspelt key in ocis.env, storage alone", args: []string{"storage", "server"}, file: []string{"OCIS_STORGE_QUOTA=1"},
			want: []string{"unknown key OCIS_STORGE_QUOTA", "did you mean OCIS_STORAGE_QUOTA?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.vars["OCIS_JWT_SECRET"] = "a-test-secret-of-enough-length"
			e.initData()
			e.appendConfig(tt.file...)
			for k, v := range tt.env {
				e.vars[k] = v
			}
			began := time.Now()
			code, stdout, stderr := e.run(tt.args...)
			took := time.Since(began)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr %q", code, stderr)
			}
			if took > time.Second {
				t.Errorf("took %s to refuse, want under a second", took)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if tt.notWant != "" && strings.Contains(stdout+stderr, tt.notWant) {
				t.Errorf("output shows the secret %q: %s", tt.notWant, stderr)
			}
			if strings.Contains(stderr, "state changed") || strings.Contains(stderr, "serving") {
				t.Errorf("something started before the refusal: %s", stderr)
			}
			if l := e.listening(); len(l) > 0 {
				t.Errorf("listening after the refusal: %v", l)
			}
		})
	}
}

// TestUnknownEnvironmentKeyIsAWarning: the environment is shared with
// everything else, so a typo there is told, not refused.
func TestUnknownEnvironmentKeyIsAWarning(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_JWT_SECRET"] = "a-test-secret-of-enough-length"
	e.vars["OCIS_USERS_BCRYPT_COSTS"] = "5"
	p := e.start("users", "server")
	waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	if got := p.stderr.String(); !strings.Contains(got, "OCIS_USERS_BCRYPT_COSTS") || !strings.Contains(got, "did you mean OCIS_USERS_BCRYPT_COST?") {
		t.Errorf("no warning about the unknown variable: %s", got)
	}
	// Each service logs its effective settings at start, secrets redacted.
	var line string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, "msg=settings") {
			line = l
		}
	}
	if !strings.Contains(line, "bcrypt-cost=4") || !strings.Contains(line, "admin-password=\"<redacted") || strings.Contains(line, testAdminPassword) {
		t.Errorf("settings line %q: want the cost and a redacted password", line)
	}
}

// TestSecondProcessOnOneDataDirExits: the data dir is locked while a
// process uses it; another ocis server, or a service run alone on a data
// dir the server uses, exits 1 within a second naming the holder's pid.
func TestSecondProcessOnOneDataDirExits(t *testing.T) {
	e, first := startFamily(t)
	pid := strconv.Itoa(first.cmd.Process.Pid)
	// Everything else free, so only the data dir stands in the way.
	second := &env{t: t, dir: e.dir, vars: map[string]string{}}
	for k, v := range newEnv(t).vars {
		second.vars[k] = v
	}
	second.vars["OCIS_BASE_DATA_PATH"] = e.dir
	for _, args := range [][]string{{"server"}, {"storage", "server"}, {"users", "server"}} {
		began := time.Now()
		code, _, stderr := second.run(args...)
		if took := time.Since(began); took > time.Second {
			t.Errorf("%v took %s to refuse, want under a second", args, took)
		}
		if code != 1 || !strings.Contains(stderr, "process "+pid) || !strings.Contains(stderr, "is locked") {
			t.Errorf("%v: exit %d, stderr %q; want 1 naming pid %s", args, code, stderr, pid)
		}
	}
	// The first one is untouched.
	if st := e.status("storage"); st.State != "running" || st.Restarts != 0 {
		t.Errorf("storage of the first server: %+v", st)
	}
}

// TestCLIFindsTheRuntimeFromTheDataPath: a runtime started with its own
// control address and a token from its environment is found by a CLI that
// knows only OCIS_BASE_DATA_PATH.
func TestCLIFindsTheRuntimeFromTheDataPath(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_RUNTIME_TOKEN"] = "a-token-only-this-runtime-has"
	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	other := &env{t: t, dir: e.dir, vars: map[string]string{"OCIS_BASE_DATA_PATH": e.dir}}
	code, stdout, stderr := other.run("list")
	if code != 0 || !strings.Contains(stdout, "storage") {
		t.Fatalf("ocis list from the data path alone: exit %d, %s %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "runtime.addr"))
	if got := strings.TrimSpace(string(b)); err != nil || got != e.vars["OCIS_RUNTIME_ADDR"] {
		t.Errorf("runtime.addr = %q, want %s", got, e.vars["OCIS_RUNTIME_ADDR"])
	}
}
