package registry

import (
	"testing"
	"time"
)

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, method, path string
		want                  bool
	}{
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens", true},
		{"POST /api/v1/tokens", "GET", "/api/v1/tokens", false},
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens/", false},
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens/x", false},
		{"POST /api/v1/tokens", "POST", "/api/v1/token", false},
		{"POST /api/v1/tokens", "POST", "/api/v1", false},
		{"GET /api/v1/users/{name}", "GET", "/api/v1/users/alice", true},
		{"GET /api/v1/users/{name}", "HEAD", "/api/v1/users/alice", true},
		{"GET /api/v1/users/{name}", "GET", "/api/v1/users/", false},
		{"GET /api/v1/users/{name}", "GET", "/api/v1/users/alice/files", false},
		{"POST /api/v1/services/{name}/kill", "POST", "/api/v1/services/users/kill", true},
		{"POST /api/v1/services/{name}/kill", "POST", "/api/v1/services/users/run", false},
		{"GET /api/v1/files/{path...}", "GET", "/api/v1/files/", true},
		{"GET /api/v1/files/{path...}", "GET", "/api/v1/files/a/b.txt", true},
		{"GET /api/v1/files/{path...}", "GET", "/api/v1/files", false},
		{"GET /api/v1/files/", "GET", "/api/v1/files/a", true},
		{"GET /api/v1/files/{$}", "GET", "/api/v1/files/", true},
		{"GET /api/v1/files/{$}", "GET", "/api/v1/files/a", false},
		{"/api/v1/ping", "DELETE", "/api/v1/ping", true},
		{"GET /", "GET", "/anything/at/all", true},
		{"GET /{$}", "GET", "/", true},
		{"GET /{$}", "GET", "/x", false},
	} {
		t.Run(tc.pattern+" "+tc.method+" "+tc.path, func(t *testing.T) {
			p, ok := parsePattern(tc.pattern)
			if !ok {
				t.Fatalf("pattern %q does not parse", tc.pattern)
			}
			if got := p.match(tc.method, tc.path); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "POST api/v1/tokens", "example.com/api"} {
		if _, ok := parsePattern(bad); ok {
			t.Errorf("pattern %q parses, want it refused", bad)
		}
	}
}

func TestPublicRoutesBelongToTheirOwner(t *testing.T) {
	m := NewMemory()
	if err := m.Declare("users", []string{"/api/v1/users", "/api/v1/tokens"}, []string{"POST /api/v1/tokens"}); err != nil {
		t.Fatal(err)
	}
	// Another service cannot make a path it does not own public.
	if err := m.Register(Instance{Service: "rogue", Node: "n", Addr: "127.0.0.1:1", Routes: []string{"/api/v1/rogue"}, Public: []string{"GET /api/v1/users"}}); err != nil {
		t.Fatal(err)
	}
	tbl := m.Table()
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v1/tokens", true},
		{"POST", "/api/v1/users", false},
		{"GET", "/api/v1/users", false},
	} {
		owner, _ := tbl.Owner(tc.path)
		if got := tbl.Public(owner, tc.method, tc.path); got != tc.want {
			t.Errorf("Public(%s, %s %s) = %v, want %v", owner, tc.method, tc.path, got, tc.want)
		}
	}
	// Declared public routes hold without an instance, and an instance's
	// count as declared while it runs.
	in := Instance{Service: "files", Node: "n", Addr: "127.0.0.1:2", Routes: []string{"/api/v1/shared"}, Public: []string{"GET /api/v1/shared/{id}"}}
	if err := m.Register(in); err != nil {
		t.Fatal(err)
	}
	if !m.Table().Public("files", "GET", "/api/v1/shared/x") {
		t.Error("an instance's public route is not public")
	}
	decl := m.Table().Declarations()
	if got := decl["users"].Public; len(got) != 1 || got[0] != "POST /api/v1/tokens" {
		t.Errorf("declarations of users = %+v", decl["users"])
	}
}

// TestClusterCarriesPublicRoutes checks that public routes survive the
// merge: declared ones while no instance runs, and those another node's
// record announces.
func TestClusterCarriesPublicRoutes(t *testing.T) {
	local := NewMemory()
	if err := local.Declare("users", []string{"/api/v1/tokens"}, []string{"POST /api/v1/tokens"}); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(WatcherOptions{Self: "n1"})
	c := NewCluster(local, w)
	if !c.Table().Public("users", "POST", "/api/v1/tokens") {
		t.Error("declared public route lost in the merge")
	}
	w.apply(put(t, NodeRecord{Node: "n2", Services: []ServiceRecord{
		{Name: "shares", State: StateRunning, Addr: "10.0.0.2:9170", Routes: []string{"/api/v1/shares"}, Public: []string{"GET /api/v1/shares/{id}"}},
	}}), 1, time.Now(), ttl)
	tbl := c.Table()
	if !tbl.Public("shares", "GET", "/api/v1/shares/abc") {
		t.Error("a remote node's public route is not public")
	}
	if !tbl.Public("users", "POST", "/api/v1/tokens") {
		t.Error("declared public route lost after a remote change")
	}
}
