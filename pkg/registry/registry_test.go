package registry

import (
	"slices"
	"testing"
)

func TestOwnerIsLongestPrefix(t *testing.T) {
	tbl := NewTable(nil, []Instance{
		{Service: "users", Node: "a", Addr: "127.0.0.1:1", Routes: []string{"/api/v1/users", "/api/v1/tokens"}},
		{Service: "storage", Node: "a", Addr: "127.0.0.1:2", Routes: []string{"/api/v1/files"}},
		{Service: "special", Node: "a", Addr: "127.0.0.1:3", Routes: []string{"/api/v1/files/special"}},
	})
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"/api/v1/users", "users", true},
		{"/api/v1/users/me", "users", true},
		{"/api/v1/tokens", "users", true},
		{"/api/v1/files/a/b.txt", "storage", true},
		{"/api/v1/files/special/x", "special", true},
		{"/api/v1/filesystem", "", false},
		{"/api/v1/usersx", "", false},
		{"/", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := tbl.Owner(tt.path)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Owner(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMemoryRegisterDeregister(t *testing.T) {
	m := NewMemory()
	a := Instance{Service: "storage", Node: "n1", Addr: "127.0.0.1:1", Routes: []string{"/api/v1/files"}}
	b := Instance{Service: "storage", Node: "n2", Addr: "127.0.0.2:1", Routes: []string{"/api/v1/files"}}
	before := m.Table()
	if err := m.Register(a); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(b); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Table().Instances("storage")); !slices.Equal(got, []string{a.ID(), b.ID()}) {
		t.Errorf("instances = %v", got)
	}
	if len(before.Instances("storage")) != 0 {
		t.Error("an earlier table changed: tables must be immutable")
	}
	if err := m.Deregister(a); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Table().Instances("storage")); !slices.Equal(got, []string{b.ID()}) {
		t.Errorf("after deregister: %v", got)
	}
	_ = m.Deregister(b)
	if _, ok := m.Table().Owner("/api/v1/files/x"); ok {
		t.Error("an undeclared route stays owned after its last instance left")
	}
}

func TestDeclaredRoutesOutliveInstances(t *testing.T) {
	m := NewMemory()
	if err := m.Declare("storage", []string{"/api/v1/files"}, nil); err != nil {
		t.Fatal(err)
	}
	got, ok := m.Table().Owner("/api/v1/files/a")
	if !ok || got != "storage" || len(m.Table().Instances("storage")) != 0 {
		t.Errorf("owner = %q, %v with %d instances; want storage with none", got, ok, len(m.Table().Instances("storage")))
	}
}

func ids(in []Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID()
	}
	return out
}
