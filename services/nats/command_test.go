package nats

import (
	"io"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
)

func testEnv(t *testing.T) service.Env {
	t.Helper()
	return service.Env{
		Logger: log.NewNopLogger(),
		Shared: &service.Shared{BaseDataPath: t.TempDir(), LogLevel: "info", LogFormat: "logfmt"},
		Node:   "n1",
	}
}

func newConfig() *Config { return Descriptor().NewConfig().(*Config) }

// TestBuildRefusals checks that Build refuses, before anything listens,
// the settings an operator must not run with, and names the env var that
// fixes each. Nothing listens: the addresses carry port 0, since only
// their hosts matter to the checks.
func TestBuildRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		want string // substring of the error; empty: accepted
	}{
		{name: "defaults", set: func(*Config) {}},
		{name: "localhost", set: func(c *Config) { c.base.HTTPAddr = "localhost:0" }},
		{name: "ipv6 loopback", set: func(c *Config) { c.base.HTTPAddr = "[::1]:0" }},
		{name: "all interfaces without credentials", set: func(c *Config) { c.base.HTTPAddr = "0.0.0.0:0" }, want: "OCIS_NATS_USER"},
		{name: "empty host without credentials", set: func(c *Config) { c.base.HTTPAddr = ":0" }, want: "not a loopback address"},
		{name: "lan address without credentials", set: func(c *Config) { c.base.HTTPAddr = "10.1.2.3:0" }, want: "not a loopback address"},
		{name: "host name without credentials", set: func(c *Config) { c.base.HTTPAddr = "node1.example:0" }, want: "not a loopback address"},
		{name: "lan address with credentials", set: func(c *Config) {
			c.base.HTTPAddr, c.User, c.Password = "10.1.2.3:0", "ocis", "secret"
		}},
		{name: "user without password", set: func(c *Config) { c.User = "ocis" }, want: "both OCIS_NATS_USER and OCIS_NATS_PASSWORD"},
		{name: "loopback cluster", set: func(c *Config) {
			c.ClusterAddr, c.Routes = "127.0.0.2:0", []string{"nats-route://127.0.0.1:0"}
		}},
		{name: "cluster off loopback without route credentials", set: func(c *Config) {
			c.base.HTTPAddr, c.User, c.Password = "10.1.2.3:0", "ocis", "secret"
			c.ClusterAddr = "10.1.2.3:0"
		}, want: "OCIS_NATS_CLUSTER_USER"},
		{name: "cluster off loopback with route credentials", set: func(c *Config) {
			c.ClusterAddr, c.ClusterUser, c.ClusterPassword = "0.0.0.0:0", "route", "secret"
			c.Routes = []string{"10.1.2.4:0"}
		}},
		{name: "route listener without routes", set: func(c *Config) { c.ClusterAddr = "127.0.0.1:0" }, want: "OCIS_NATS_ROUTES"},
		{name: "routes without route listener", set: func(c *Config) { c.Routes = []string{"nats-route://10.1.2.4:0"} }, want: "OCIS_NATS_CLUSTER_ADDR"},
		{name: "route with a bad scheme", set: func(c *Config) {
			c.ClusterAddr, c.Routes = "127.0.0.1:0", []string{"http://127.0.0.1:0"}
		}, want: "nats-route://host:port"},
		{name: "cluster name with a space", set: func(c *Config) { c.ClusterName = "my cluster" }, want: "OCIS_NATS_CLUSTER_NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConfig()
			tc.set(c)
			_, err := c.Build(testEnv(t))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestRoutesGetCredentials checks that a route without credentials of its
// own is given the route credentials, which the other server checks.
func TestRoutesGetCredentials(t *testing.T) {
	c := newConfig()
	c.ClusterAddr, c.ClusterUser, c.ClusterPassword = "127.0.0.1:0", "route", "s3cret"
	c.Routes = []string{"nats-route://127.0.0.2:0", "nats-route://other:pw@127.0.0.3:0"}
	opts, err := c.serverOptions(testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range opts.Routes {
		got = append(got, u.String())
	}
	want := []string{"nats-route://route:s3cret@127.0.0.2:0", "nats-route://other:pw@127.0.0.3:0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("routes %v, want %v", got, want)
	}
	if opts.ServerName != "n1" || opts.Cluster.Name != DefaultClusterName {
		t.Errorf("server %q in cluster %q, want n1 in %q", opts.ServerName, opts.Cluster.Name, DefaultClusterName)
	}
}

// TestFlagNames checks the env names an operator sets: the client port is
// OCIS_NATS_ADDR (nats has no HTTP API, so no OCIS_NATS_HTTP_ADDR).
func TestFlagNames(t *testing.T) {
	env := map[string]string{
		"OCIS_NATS_ADDR":             "127.0.0.1:0",
		"OCIS_NATS_DEBUG_ADDR":       "127.0.0.2:0",
		"OCIS_NATS_CLUSTER_ADDR":     "127.0.0.3:0",
		"OCIS_NATS_ROUTES":           "nats-route://127.0.0.4:0, nats-route://127.0.0.5:0",
		"OCIS_NATS_CLUSTER_NAME":     "blue",
		"OCIS_NATS_USER":             "u",
		"OCIS_NATS_PASSWORD":         "p",
		"OCIS_NATS_CLUSTER_USER":     "ru",
		"OCIS_NATS_CLUSTER_PASSWORD": "rp",
		"OCIS_NATS_DATA_DIR":         "/srv/nats",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c := newConfig()
	set := config.NewSet("nats", io.Discard)
	set.Register("", Name, c.RegisterFlags)
	if set.FlagSet().Lookup("http-addr") != nil {
		t.Error("nats has an http-addr flag; its primary address is --addr")
	}
	if err := set.FlagSet().Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := set.Load(func() (string, error) { return "", nil }); err != nil {
		t.Fatal(err)
	}
	b := c.Base()
	got := []string{b.HTTPAddr, b.DebugAddr, c.ClusterAddr, strings.Join(c.Routes, ","), c.ClusterName, c.User, c.Password, c.ClusterUser, c.ClusterPassword, b.DataDir}
	want := []string{"127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0", "nats-route://127.0.0.4:0,nats-route://127.0.0.5:0", "blue", "u", "p", "ru", "rp", "/srv/nats"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// TestServerLogger checks the levels nats-server's lines get, and that a
// fatal one is kept for Run to return instead of ending the process.
func TestServerLogger(t *testing.T) {
	var buf strings.Builder
	l := newServerLogger(log.NewLogfmtLogger(&buf))
	l.Noticef("Server is ready")
	l.Noticef("  Version:  %s", "2.15.2")
	l.Warnf("slow consumer")
	l.Warnf(plaintextWarning)
	l.Errorf("route failed")
	l.Fatalf("Error listening on port: %d", 9233)
	l.Fatalf("second")
	got := buf.String()
	for _, want := range []string{
		`level=info component=nats-server msg="Server is ready"`,
		`level=debug component=nats-server msg="  Version:  2.15.2"`,
		`level=warn component=nats-server msg="slow consumer"`,
		`level=debug component=nats-server msg="` + plaintextWarning + `"`,
		`level=error component=nats-server msg="route failed"`,
		`level=error component=nats-server msg="Error listening on port: 9233" fatal=true`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
	if err := l.err(); err == nil || !strings.Contains(err.Error(), "9233") {
		t.Errorf("fatal kept: %v, want the first one", err)
	}
}
