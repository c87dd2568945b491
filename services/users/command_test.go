package users

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
)

func TestDescriptor(t *testing.T) {
	d := Descriptor()
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{name: "name", got: d.Name, want: "users"},
		{name: "http addr", got: d.HTTPAddr, want: "127.0.0.1:9140"},
		{name: "debug addr", got: d.DebugAddr, want: "127.0.0.1:9145"},
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
	// The routes come from the API, never listed by hand: the prefixes
	// the service owns, and login as its one public route.
	if want := []string{"/api/v1/tokens", "/api/v1/users"}; !slices.Equal(d.Routes, want) {
		t.Errorf("routes = %v, want %v", d.Routes, want)
	}
	if want := []string{"POST /api/v1/tokens"}; !slices.Equal(d.Public, want) {
		t.Errorf("public routes = %v, want %v", d.Public, want)
	}
}

func TestConfigDefaultsAndFlags(t *testing.T) {
	cfg, ok := Descriptor().NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig returned %T, want *Config", Descriptor().NewConfig())
	}
	t.Run("defaults", func(t *testing.T) {
		want := Config{
			base:       service.NewBase(Descriptor(), true),
			AdminUser:  "admin",
			TokenTTL:   24 * time.Hour,
			BcryptCost: bcrypt.DefaultCost,
			Guard: GuardConfig{
				Slots: max(1, runtime.GOMAXPROCS(0)-1), SlotWait: 3 * time.Second,
				UserBurst: 10, AddrBurst: 20, Refill: 6 * time.Second, Tarpit: time.Second,
			},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			PublishEvents:  true,
		}
		if !reflect.DeepEqual(*cfg, want) {
			t.Errorf("got %+v, want %+v", *cfg, want)
		}
	})

	t.Run("flags", func(t *testing.T) {
		fs := flag.NewFlagSet("users", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		err := fs.Parse([]string{
			"-http-addr", "127.0.0.1:0",
			"-data-dir", "/srv/users",
			"-admin-user", "root",
			"-admin-password", "root-pass-1",
			"-token-ttl", "90m",
			"-bcrypt-cost", "12",
			"-login-slots", "3",
			"-login-user-burst", "4",
			"-login-addr-burst", "7",
			"-login-refill", "2s",
			"-trusted-proxies", "10.0.0.0/8, 192.0.2.1",
			"-publish-events=false",
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			got  any
			want any
		}{
			{name: "http addr", got: cfg.Base().HTTPAddr, want: "127.0.0.1:0"},
			{name: "data dir", got: cfg.Base().DataDir, want: "/srv/users"},
			{name: "admin user", got: cfg.AdminUser, want: "root"},
			{name: "admin password", got: cfg.AdminPassword, want: "root-pass-1"},
			{name: "token ttl", got: cfg.TokenTTL, want: 90 * time.Minute},
			{name: "bcrypt cost", got: cfg.BcryptCost, want: 12},
			{name: "login slots", got: cfg.Guard.Slots, want: 3},
			{name: "user burst", got: cfg.Guard.UserBurst, want: 4},
			{name: "addr burst", got: cfg.Guard.AddrBurst, want: 7},
			{name: "refill", got: cfg.Guard.Refill, want: 2 * time.Second},
			{name: "trusted proxies", got: fmt.Sprint(cfg.TrustedProxies), want: "[10.0.0.0/8 192.0.2.1/32]"},
			{name: "publish events", got: cfg.PublishEvents, want: false},
		} {
			if tc.got != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
		}
	})
}

func TestConfigBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		secret   string
		cost     int
		wantErrs []string // substrings of the error; none means success
	}{
		{name: "ok", secret: testSecret, cost: bcrypt.DefaultCost},
		{name: "lowest cost", secret: testSecret, cost: bcrypt.MinCost},
		{name: "highest cost", secret: testSecret, cost: bcrypt.MaxCost},
		{name: "secret at 16 bytes", secret: strings.Repeat("s", 16), cost: bcrypt.MinCost},
		{name: "no secret", secret: "", cost: bcrypt.MinCost, wantErrs: []string{"jwt secret", "16 bytes", "ocis init", "OCIS_JWT_SECRET"}},
		{name: "short secret", secret: strings.Repeat("s", 15), cost: bcrypt.MinCost, wantErrs: []string{"jwt secret", "16 bytes", "ocis init"}},
		{name: "cost too low", secret: testSecret, cost: bcrypt.MinCost - 1, wantErrs: []string{"bcrypt cost 3", "4 to 31"}},
		{name: "cost too high", secret: testSecret, cost: bcrypt.MaxCost + 1, wantErrs: []string{"bcrypt cost 32", "4 to 31"}},
		{name: "zero cost", secret: testSecret, cost: 0, wantErrs: []string{"bcrypt cost 0", "4 to 31"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Descriptor().NewConfig().(*Config)
			cfg.BcryptCost = tc.cost
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
func testRunConfig(dir, adminPass string) (*Config, service.Env) {
	cfg := Descriptor().NewConfig().(*Config)
	cfg.Base().HTTPAddr = "127.0.0.1:0"
	cfg.Base().DebugAddr = "127.0.0.1:0"
	cfg.Base().DataDir = dir
	cfg.AdminPassword = adminPass
	cfg.BcryptCost = bcrypt.MinCost
	shared := service.NewShared()
	shared.JWTSecret = testSecret
	// The machine-wide files (revocations) go with the test's data, never
	// to the home directory.
	shared.BaseDataPath = dir
	return cfg, service.Env{Logger: log.NewNopLogger(), Shared: shared}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfg, env := testRunConfig(dir, adminPassword)
	s := servicetest.Start(t, cfg, env)

	for _, addr := range []string{s.Addrs.HTTP, s.Addrs.Debug} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
			t.Errorf("up got address %q, want 127.0.0.1 with a real port", addr)
		}
	}
	if s.Addrs.HTTP == s.Addrs.Debug {
		t.Errorf("http and debug share %s", s.Addrs.HTTP)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if got := getStatus(t, "http://"+s.Addrs.Debug+path); got != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, got)
		}
	}

	// The admin was bootstrapped and the API answers on the real address.
	c, err := NewClient("http://"+s.Addrs.HTTP, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := login(t, c, testAdminUser, adminPassword)
	me, err := c.Me(admin, endpoint.Empty{})
	if err != nil || me.Username != testAdminUser || !me.Admin {
		t.Errorf("me = (%+v, %v), want the admin", me, err)
	}
	if _, err := c.CreateUser(admin, CreateUserRequest{Username: "alice", Password: alicePassword}); err != nil {
		t.Fatalf("create: %v", err)
	}

	if err := s.Stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}

	// Run closed the store: it opens at once and kept the data.
	st := openTestStore(t, dir)
	got, err := st.list()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin", "alice"}; !reflect.DeepEqual(names(got), want) {
		t.Errorf("stored users = %v, want %v", names(got), want)
	}
}

func TestRunRestartKeepsAccounts(t *testing.T) {
	dir := t.TempDir()
	cfg, env := testRunConfig(dir, adminPassword)
	if err := servicetest.Start(t, cfg, env).Stop(t); err != nil {
		t.Fatal(err)
	}

	// The second start needs no admin password: the admin exists, and a
	// changed password in the config does not overwrite it.
	for _, tc := range []struct {
		name     string
		password string
	}{
		{name: "no password", password: ""},
		{name: "another password", password: "changed-pass-9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, env := testRunConfig(dir, tc.password)
			s := servicetest.Start(t, cfg, env)
			c, err := NewClient("http://"+s.Addrs.HTTP, nil)
			if err != nil {
				t.Fatal(err)
			}
			login(t, c, testAdminUser, adminPassword)
			if err := s.Stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRunFails(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })

	for _, tc := range []struct {
		name      string
		adminPass string
		httpAddr  string
		wantErr   string
	}{
		{name: "no admin password", adminPass: "", httpAddr: "127.0.0.1:0", wantErr: "bootstrap admin"},
		{name: "port taken", adminPass: adminPassword, httpAddr: taken.Addr().String(), wantErr: taken.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, env := testRunConfig(dir, tc.adminPass)
			cfg.Base().HTTPAddr = tc.httpAddr
			svc, err := cfg.Build(env)
			if err != nil {
				t.Fatal(err)
			}

			var calledUp bool
			errc := make(chan error, 1)
			go func() {
				errc <- svc.Run(context.Background(), func(service.Addrs) { calledUp = true })
			}()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not fail")
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if calledUp {
				t.Error("up was called by a run that failed to start")
			}
			// A failed start releases the store, so a retry is not locked out.
			start := time.Now()
			openTestStore(t, dir)
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("reopening after a failed run took %s; the store was left locked", took)
			}
		})
	}
}
