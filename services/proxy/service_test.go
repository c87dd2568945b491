package proxy_test

import (
	"cmp"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
)

// threeUsers registers three instances of users, each answering its own
// node name, and returns them sorted by ID (the balancer's ring order).
func threeUsers(t *testing.T, reg *registry.Memory) []registry.Instance {
	t.Helper()
	var ins []registry.Instance
	for _, node := range []string{"n1", "n2", "n3"} {
		in := backend(t, "users", node, usersRoutes, &echo{name: node})
		if err := reg.Register(in); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	slices.SortFunc(ins, func(a, b registry.Instance) int { return cmp.Compare(a.ID(), b.ID()) })
	return ins
}

func TestBalancerRoundRobin(t *testing.T) {
	reg := registry.NewMemory()
	threeUsers(t, reg)
	b := proxy.NewBalancer(reg)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	got := map[string]int{}
	for range 30 {
		service, order, owned := b.Route("/api/v1/users/alice")
		if !owned || service != "users" || len(order) != 3 {
			t.Fatalf("Route = %q, %d instances, %v; want users, 3, true", service, len(order), owned)
		}
		resp, err := client.Get("http://" + order[0].Addr + "/api/v1/users/alice")
		if err != nil {
			t.Fatal(err)
		}
		name, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[string(name)]++
	}
	want := map[string]int{"n1": 10, "n2": 10, "n3": 10}
	if !maps.Equal(got, want) {
		t.Errorf("answers per instance = %v, want %v", got, want)
	}
}

// Each call starts one further along the ring, and the rest of the ring
// follows in order as fallbacks.
func TestBalancerRotatesOrder(t *testing.T) {
	reg := registry.NewMemory()
	ring := threeUsers(t, reg)
	b := proxy.NewBalancer(reg)
	tests := []struct {
		name string
		want []registry.Instance
	}{
		{"first call", []registry.Instance{ring[0], ring[1], ring[2]}},
		{"second call", []registry.Instance{ring[1], ring[2], ring[0]}},
		{"third call", []registry.Instance{ring[2], ring[0], ring[1]}},
		{"fourth call wraps", []registry.Instance{ring[0], ring[1], ring[2]}},
		{"fifth call", []registry.Instance{ring[1], ring[2], ring[0]}},
	}
	// The cases share the balancer's counter, so they run in order.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, _ := b.Route("/api/v1/users")
			if !slices.EqualFunc(got, tt.want, func(a, b registry.Instance) bool { return a.ID() == b.ID() }) {
				t.Errorf("order = %v, want %v", ids(got), ids(tt.want))
			}
		})
	}
}

func ids(ins []registry.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID()
	}
	return out
}

func TestBalancerRoutesByLongestPrefix(t *testing.T) {
	reg := registry.NewMemory()
	files := backend(t, "storage", "n1", storageRoutes, &echo{name: "storage"})
	special := backend(t, "special", "n1", []string{"/api/v1/files/special"}, &echo{name: "special"})
	for _, in := range []registry.Instance{files, special} {
		if err := reg.Register(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Declare("activity", []string{"/api/v1/activities"}, nil); err != nil {
		t.Fatal(err)
	}
	b := proxy.NewBalancer(reg)
	tests := []struct {
		path        string
		wantService string
		wantOwned   bool
		wantAddrs   []string
	}{
		{"/api/v1/files", "storage", true, []string{files.Addr}},
		{"/api/v1/files/a/b.txt", "storage", true, []string{files.Addr}},
		{"/api/v1/files/specialist", "storage", true, []string{files.Addr}},
		{"/api/v1/files/special", "special", true, []string{special.Addr}},
		{"/api/v1/files/special/x.txt", "special", true, []string{special.Addr}},
		{"/api/v1/activities/alice", "activity", true, nil},
		{"/api/v1/filesystem", "", false, nil},
		{"/api/v1", "", false, nil},
		{"/", "", false, nil},
		{"/nobody/owns/this", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			gotService, order, gotOwned := b.Route(tt.path)
			if gotService != tt.wantService || gotOwned != tt.wantOwned {
				t.Errorf("Route(%q) = %q, %v; want %q, %v", tt.path, gotService, gotOwned, tt.wantService, tt.wantOwned)
			}
			var gotAddrs []string
			for _, in := range order {
				gotAddrs = append(gotAddrs, in.Addr)
			}
			if !slices.Equal(gotAddrs, tt.wantAddrs) {
				t.Errorf("Route(%q) instances = %v, want %v", tt.path, gotAddrs, tt.wantAddrs)
			}
		})
	}
}
