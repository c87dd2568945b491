package storage

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestDescriptor(t *testing.T) {
	d := Descriptor()
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{name: "name", got: d.Name, want: "storage"},
		{name: "http addr", got: d.HTTPAddr, want: "127.0.0.1:9150"},
		{name: "debug addr", got: d.DebugAddr, want: "127.0.0.1:9155"},
		{name: "routes", got: strings.Join(d.Routes, ","), want: "/api/v1/files"},
		{name: "default set", got: d.Default(), want: true},
		{name: "depends on nothing", got: len(d.DependsOn), want: 0},
		{name: "has a summary", got: d.Summary != "", want: true},
		{name: "has a config", got: d.NewConfig != nil, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestConfigDefaultsAndFlags(t *testing.T) {
	cfg, ok := Descriptor().NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig returned %T, want *Config", Descriptor().NewConfig())
	}
	if want := (Config{base: service.NewBase(Descriptor(), true), PublishEvents: true}); !reflect.DeepEqual(*cfg, want) {
		t.Errorf("defaults = %+v, want %+v", *cfg, want)
	}
	fs := flag.NewFlagSet("storage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-http-addr", "127.0.0.1:0", "-data-dir", "/srv/files", "-quota", "1073741824", "-publish-events=false"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{name: "http addr", got: cfg.Base().HTTPAddr, want: "127.0.0.1:0"},
		{name: "data dir", got: cfg.Base().DataDir, want: "/srv/files"},
		{name: "quota", got: cfg.Quota, want: int64(1 << 30)},
		{name: "publish events", got: cfg.PublishEvents, want: false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestConfigBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		secret   string
		quota    int64
		wantErrs []string // substrings of the error; none means success
	}{
		{name: "ok", secret: testSecret},
		{name: "quota", secret: testSecret, quota: 1},
		{name: "no secret", secret: "", wantErrs: []string{"jwt secret", "ocis init", "OCIS_JWT_SECRET"}},
		{name: "short secret", secret: "short", wantErrs: []string{"16 bytes"}},
		{name: "negative quota", secret: testSecret, quota: -1, wantErrs: []string{"quota -1", "0 means no limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Descriptor().NewConfig().(*Config)
			cfg.Quota = tc.quota
			shared := service.NewShared()
			shared.JWTSecret = tc.secret
			shared.BaseDataPath = t.TempDir()
			got, err := cfg.Build(service.Env{Logger: log.NewNopLogger(), Shared: shared})
			if len(tc.wantErrs) == 0 {
				if err != nil || got == nil {
					t.Fatalf("build = (%v, %v), want a service", got, err)
				}
				return
			}
			if err == nil {
				t.Fatal("build succeeded, want an error")
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to mention %q", err, want)
				}
			}
		})
	}
}

// testRunConfig returns a config that serves on free ports from dir.
func testRunConfig(dir string, logger log.Logger) (*Config, service.Env) {
	cfg := Descriptor().NewConfig().(*Config)
	cfg.Base().HTTPAddr = "127.0.0.1:0"
	cfg.Base().DebugAddr = "127.0.0.1:0"
	cfg.Base().DataDir = dir
	shared := service.NewShared()
	shared.JWTSecret = testSecret
	// The machine-wide files (revocations) go with the test's data, never
	// to the home directory.
	shared.BaseDataPath = dir
	return cfg, service.Env{Logger: logger, Shared: shared}
}

// runClient is a client of a started service acting for user.
func runClient(t *testing.T, s *servicetest.Running, user string) (*Client, context.Context) {
	t.Helper()
	c, err := NewClient("http://"+s.Addrs.HTTP, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	keys := newTestKeys(t)
	token, _, err := keys.Sign(auth.Identity{ID: user, Name: user}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c, transport.WithBearer(context.Background(), token)
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfg, env := testRunConfig(dir, log.NewNopLogger())
	s := servicetest.Start(t, cfg, env)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + s.Addrs.Debug + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
	c, alice := runClient(t, s, "alice")
	if _, created, err := c.Upload(alice, "hello.txt", strings.NewReader("hello"), 5, UploadOptions{}); err != nil || !created {
		t.Fatalf("upload = (created %t, %v)", created, err)
	}
	// Through the real server, whose read timeout the upload replaces
	// with its idle deadline: a streamed upload of unknown length.
	gen := &generator{state: 7, remaining: 8 << 20}
	if fi, _, err := c.Upload(alice, "big.bin", gen, -1, UploadOptions{}); err != nil || fi.Size != 8<<20 {
		t.Fatalf("streamed upload = (%+v, %v)", fi, err)
	}
	if err := s.Stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}

	// Run closed the metadata: it opens at once and kept the file.
	start := time.Now()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("reopening took %s; the metadata was left locked", took)
	}
	if r, found, err := st.get("alice", "hello.txt"); err != nil || !found || r.Size != 5 {
		t.Errorf("record = (%+v, %t, %v), want hello.txt of 5 bytes", r, found, err)
	}
}

func TestRunFails(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })

	dir := t.TempDir()
	cfg, env := testRunConfig(dir, log.NewNopLogger())
	cfg.Base().HTTPAddr = taken.Addr().String()
	svc, err := cfg.Build(env)
	if err != nil {
		t.Fatal(err)
	}
	var calledUp bool
	err = svc.Run(context.Background(), func(service.Addrs) { calledUp = true })
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("err = %v, want one naming %s", err, taken.Addr())
	}
	if calledUp {
		t.Error("up was called by a run that failed to start")
	}
	// A failed start releases the metadata, so a retry is not locked out.
	st, err := openStore(dir)
	if err != nil {
		t.Fatalf("reopen after a failed run: %v", err)
	}
	_ = st.close()
}
