package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/services"
)

// binary is the ocis binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	// A copy of this test binary that a test re-runs in private
	// namespaces (the partition test) uses the binary built here: nothing
	// can be fetched in there, and a second build could differ.
	if b := os.Getenv(reuseBinaryEnv); b != "" {
		binary = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ocis-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ocis")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ocis:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Ports handed to ocis come from below the kernel's ephemeral range
// (32768-60999 on Linux): a port found free there cannot be taken in the
// meantime as the local port of some outgoing connection, which is what a
// port from 127.0.0.1:0 risks between the check and ocis binding it.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu sync.Mutex
	handed  = map[int]bool{}
)

// freeAddr returns a loopback address with a port nobody listens on and no
// other test of this binary was given.
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow)
		if handed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		handed[port] = true
		return addr
	}
	t.Fatal("no free port found below the ephemeral range")
	return ""
}

// proc is a started ocis process.
type proc struct {
	cmd    *exec.Cmd
	stdout *servicetest.Logs
	stderr *servicetest.Logs
	done   chan struct{}
	err    error
}

// env is a test's isolated environment: a temp data dir and free ports.
type env struct {
	t    *testing.T
	dir  string
	vars map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), vars: map[string]string{}}
	e.vars["OCIS_BASE_DATA_PATH"] = e.dir
	e.vars["OCIS_RUNTIME_ADDR"] = freeAddr(t)
	for _, name := range services.Catalogue().Names() {
		e.vars[primaryAddrEnv(name)] = freeAddr(t)
		e.vars[config.EnvName(name, "debug-addr")] = freeAddr(t)
	}
	// Each test is a node on its own: a host name shared by parallel
	// tests must not matter.
	e.vars["OCIS_NODE"] = "test"
	// The cheapest bcrypt cost keeps the suite fast; the cost is a flag
	// like any other and its default is tested by the unit tests.
	e.vars["OCIS_USERS_BCRYPT_COST"] = "4"
	e.vars["OCIS_LOG_LEVEL"] = "debug"
	// ocis init stores only a hash and prints the password once; tests set
	// it through the environment, which wins over the config file.
	e.vars["OCIS_USERS_ADMIN_PASSWORD"] = testAdminPassword
	return e
}

const testAdminPassword = "admin-Pass-1"

// primaryAddrEnv is the env var of a service's primary listener: the HTTP
// API's, or the NATS client port's for the nats service, which has no
// HTTP API.
func primaryAddrEnv(name string) string {
	if name == "nats" {
		return config.EnvName(name, "addr")
	}
	return config.EnvName(name, "http-addr")
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCIS_") {
			out = append(out, kv)
		}
	}
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

// start runs ocis with args and stops it when the test ends.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stdout: &servicetest.Logs{}, stderr: &servicetest.Logs{}, done: make(chan struct{})}
	p.cmd.Env = e.environ()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.stop(e.t, 20*time.Second)
		if e.t.Failed() {
			e.t.Logf("ocis %s stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// stop sends SIGTERM and waits; it kills the process if it does not exit
// within grace and reports the exit code (-1 when killed).
func (p *proc) stop(t *testing.T, grace time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.exitCode()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitCode()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("ocis did not exit within %s of SIGTERM", grace)
		return -1
	}
}

func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// run runs ocis to completion and returns its exit code and output.
func (e *env) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = e.environ()
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(wait)
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// waitHTTP waits until url answers with status want.
func waitHTTP(t *testing.T, url string, want int) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	waitFor(t, url, 30*time.Second, func() bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == want
	})
}

// configValue reads one key of the config file ocis init wrote.
func (e *env) configValue(key string) string {
	e.t.Helper()
	values, err := config.ReadFile(filepath.Join(e.dir, "ocis.env"))
	if err != nil {
		e.t.Fatal(err)
	}
	v, ok := values[key]
	if !ok {
		e.t.Fatalf("config file has no %s", key)
	}
	return v
}

// expectError sends a request (token "" sends none) and checks the answer
// is wantStatus with a JSON error of wantCode and a message. It returns the
// answer's headers for further checks.
func expectError(t *testing.T, method, url, token, body string, wantStatus int, wantCode string) http.Header {
	t.Helper()
	return expectErrorReason(t, method, url, token, body, wantStatus, wantCode, "")
}

// expectErrorReason is expectError that also wants the stable reason
// wantReason, when it is not empty.
func expectErrorReason(t *testing.T, method, url, token, body string, wantStatus int, wantCode, wantReason string) http.Header {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got wireError
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Errorf("%s %s: error body is not JSON: %v", method, url, err)
	}
	if resp.StatusCode != wantStatus || got.Error.Code != wantCode || got.Error.Reason == "" || got.Error.Message == "" {
		t.Errorf("%s %s: got %d %+v, want %d %s with a reason and a message", method, url, resp.StatusCode, got.Error, wantStatus, wantCode)
	}
	if wantReason != "" && got.Error.Reason != wantReason {
		t.Errorf("%s %s: reason %q, want %q", method, url, got.Error.Reason, wantReason)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: content type %q, want JSON", method, url, ct)
	}
	return resp.Header
}
