package main_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services/storage"
)

// statusesByName is `ocis list --json` by service.
func (e *env) statusesByName() map[string]supervisor.Status {
	out := map[string]supervisor.Status{}
	for _, s := range e.listJSON() {
		out[s.Name] = s
	}
	return out
}

// untouched fails the test for each service but changed whose start
// differs between before and after.
func untouched(t *testing.T, before, after map[string]supervisor.Status, changed ...string) {
	t.Helper()
	for name, b := range before {
		a := after[name]
		isChanged := false
		for _, c := range changed {
			isChanged = isChanged || c == name
		}
		same := a.Since.Equal(b.Since) && a.Restarts == b.Restarts && a.State == b.State
		switch {
		case isChanged && a.Since.Equal(b.Since):
			t.Errorf("%s was not restarted: since %s", name, a.Since)
		case !isChanged && !same:
			t.Errorf("%s was touched: before %+v, after %+v", name, b, a)
		}
	}
}

// TestRestartAppliesTheConfigFile is the operator's task of the README:
// change the storage quota in ocis.env and apply it by restarting storage
// alone.
func TestRestartAppliesTheConfigFile(t *testing.T) {
	e := newEnv(t)
	e.initData()
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	alice := e.userCtx("alice")
	c := e.storageVia("proxy")
	two := bytes.Repeat([]byte("x"), 2000)
	if _, _, err := c.Upload(alice, "a", bytes.NewReader(two), int64(len(two)), storage.UploadOptions{}); err != nil {
		t.Fatalf("upload without a quota: %v", err)
	}
	before := e.statusesByName()

	e.appendConfig("OCIS_STORAGE_QUOTA=1KB")
	code, stdout, stderr := e.run("restart", "storage")
	if code != 0 || !strings.Contains(stdout, "storage: running") {
		t.Fatalf("ocis restart storage: exit %d, %s %s", code, stdout, stderr)
	}
	if _, _, err := c.Upload(alice, "b", bytes.NewReader(two), int64(len(two)), storage.UploadOptions{}); !errors.Is(err, apierr.ErrTooLarge) {
		t.Errorf("upload over the new quota: %v, want too_large", err)
	}
	untouched(t, before, e.statusesByName(), "storage")
	if !strings.Contains(p.stderr.String(), "quota=1KB") {
		t.Errorf("storage did not log its new settings")
	}

	// A value the service would refuse refuses the restart; storage keeps
	// running with what it has.
	e.appendConfig("OCIS_STORAGE_QUOTA=-1")
	code, _, stderr = e.run("restart", "storage")
	if code != 1 || !strings.Contains(stderr, "--storage.quota") || !strings.Contains(stderr, "OCIS_STORAGE_QUOTA") || !strings.Contains(stderr, `"-1"`) {
		t.Errorf("restart with an invalid quota: exit %d, %s; want 1 naming the flag", code, stderr)
	}
	if st := e.status("storage"); st.State != supervisor.StateRunning {
		t.Errorf("storage after the refused restart: %+v", st)
	}
}

// TestReloadRestartsExactlyTheChanged: `ocis reload` and SIGHUP restart the
// services whose settings changed, and only them, and say which.
func TestReloadRestartsExactlyTheChanged(t *testing.T) {
	e := newEnv(t)
	e.initData()
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)

	before := e.statusesByName()
	e.appendConfig("OCIS_USERS_TOKEN_TTL=2h", "OCIS_REGISTRY_TTL=20s")
	code, stdout, stderr := e.run("reload")
	if code != 0 {
		t.Fatalf("ocis reload: exit %d, %s %s", code, stdout, stderr)
	}
	for _, want := range []string{"restarted: users\n", "unchanged: proxy, storage, activity, nats\n", "ocis server restarts: OCIS_REGISTRY_TTL\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ocis reload said %q; want %q", stdout, want)
		}
	}
	untouched(t, before, e.statusesByName(), "users")

	// Nothing changed: nothing restarts.
	before = e.statusesByName()
	if code, stdout, _ := e.run("reload"); code != 0 || !strings.Contains(stdout, "restarted: -") {
		t.Errorf("reload without a change: exit %d, %s", code, stdout)
	}
	untouched(t, before, e.statusesByName())

	// SIGHUP does the same.
	e.appendConfig("OCIS_STORAGE_QUOTA=1MB", "OCIS_ACTIVITY_SHUTDOWN_TIMEOUT=7s")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload of SIGHUP", 30*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "restarted=storage,activity")
	})
	untouched(t, before, e.statusesByName(), "storage", "activity")
	if st := e.status("storage"); st.State != supervisor.StateRunning {
		t.Errorf("storage after SIGHUP: %+v", st)
	}
}
