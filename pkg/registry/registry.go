// Package registry records which instance of which service runs where, and
// which routes it owns. The runtime registers an instance when it becomes
// running and deregisters it when it stops; the proxy reads the table on
// every request. Across nodes, each runtime announces its node's record in
// a JetStream key-value bucket (Announcer) and watches everyone's
// (Watcher); Cluster serves both as one table.
package registry

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Instance is one running instance of a service.
type Instance struct {
	Service string `json:"service"`
	Node    string `json:"node"`
	Addr    string `json:"addr"`
	// Routes are the path prefixes the service owns.
	Routes []string `json:"routes"`
	// Public are the patterns of the service's routes that take requests
	// without a token ("POST /api/v1/tokens"), as http.ServeMux writes
	// them; the proxy lets those through unauthenticated.
	Public []string `json:"public,omitempty"`
	// Local serves the instance's API without the network when it runs in
	// this process; it is never sent to another node.
	Local http.Handler `json:"-"`
}

// ID identifies an instance among all nodes.
func (i Instance) ID() string { return i.Service + "@" + i.Node + "/" + i.Addr }

// Registry is where instances are recorded. Memory holds one process's
// instances; Cluster merges a Memory with the other nodes' running
// instances, which a Watcher learns from the NATS key-value bucket that
// every node's Announcer writes (see docs/distribution.md).
type Registry interface {
	// Declare records that service owns the path prefixes routes, and
	// that its routes public take requests without a token, whether or
	// not an instance runs: a request for a declared route with no
	// instance is "unavailable", not "not found" (nor "unauthenticated",
	// when the route is public).
	Declare(service string, routes, public []string) error
	Register(Instance) error
	Deregister(Instance) error
	// Table returns the current routing table. It is immutable: a change
	// makes a new one, so readers need no lock.
	Table() *Table
}

// Table is a snapshot of the registry: the instances of each service,
// which service owns which path prefix, and which of its routes are public.
type Table struct {
	instances map[string][]Instance
	routes    []route // longest prefix first
	public    map[string][]pattern
}

type route struct {
	prefix  string
	service string
}

// Declared is what a service declared: the path prefixes it owns and the
// patterns of its public routes.
type Declared struct {
	Routes []string
	Public []string
}

// NewTable builds a table from declared routes (service → declaration) and
// instances; an instance's own routes count as declared too.
func NewTable(declared map[string]Declared, instances []Instance) *Table {
	t := &Table{instances: map[string][]Instance{}, public: map[string][]pattern{}}
	owners := map[string]string{}
	for service, d := range declared {
		for _, p := range d.Routes {
			owners[p] = service
		}
		t.addPublic(service, d.Public)
	}
	for _, in := range instances {
		t.instances[in.Service] = append(t.instances[in.Service], in)
		for _, p := range in.Routes {
			owners[p] = in.Service
		}
		t.addPublic(in.Service, in.Public)
	}
	for _, list := range t.instances {
		sort.Slice(list, func(i, j int) bool { return list[i].ID() < list[j].ID() })
	}
	for p, s := range owners {
		t.routes = append(t.routes, route{prefix: p, service: s})
	}
	sort.Slice(t.routes, func(i, j int) bool {
		if len(t.routes[i].prefix) != len(t.routes[j].prefix) {
			return len(t.routes[i].prefix) > len(t.routes[j].prefix)
		}
		return t.routes[i].prefix < t.routes[j].prefix
	})
	return t
}

// Owner returns the service owning path: the one with the longest route
// prefix that path equals or continues with a "/".
func (t *Table) Owner(path string) (string, bool) {
	for _, r := range t.routes {
		if path == r.prefix || strings.HasPrefix(path, r.prefix+"/") {
			return r.service, true
		}
	}
	return "", false
}

// addPublic records the public route patterns of service, once each; a
// pattern that does not parse is left out, so it stays protected.
func (t *Table) addPublic(service string, patterns []string) {
	for _, s := range patterns {
		p, ok := parsePattern(s)
		if ok && !slices.ContainsFunc(t.public[service], func(q pattern) bool { return q.text == s }) {
			t.public[service] = append(t.public[service], p)
		}
	}
}

// Public reports whether a request of method for path, which service owns,
// matches one of that service's public routes: only the owner of a path
// can make it public.
func (t *Table) Public(service, method, path string) bool {
	for _, p := range t.public[service] {
		if p.match(method, path) {
			return true
		}
	}
	return false
}

// Declarations returns what the table holds as declared: each service's
// prefixes and public patterns, its instances' included.
func (t *Table) Declarations() map[string]Declared {
	out := map[string]Declared{}
	for _, r := range t.routes {
		d := out[r.service]
		d.Routes = append(d.Routes, r.prefix)
		out[r.service] = d
	}
	for service, patterns := range t.public {
		d := out[service]
		for _, p := range patterns {
			d.Public = append(d.Public, p.text)
		}
		out[service] = d
	}
	return out
}

// Instances returns the instances of service, sorted by ID.
func (t *Table) Instances(service string) []Instance { return t.instances[service] }

// All returns every instance, sorted by service then ID.
func (t *Table) All() []Instance {
	var out []Instance
	names := make([]string, 0, len(t.instances))
	for n := range t.instances {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, t.instances[n]...)
	}
	return out
}

// Memory is a registry in one process. Changes only mark the table stale;
// the next read rebuilds it once, so a burst of n registrations (a runtime
// starting a thousand services) costs n, not n².
type Memory struct {
	mu       sync.Mutex
	declared map[string]Declared
	byID     map[string]Instance
	stale    atomic.Bool
	table    atomic.Pointer[Table]
}

// NewMemory returns an empty in-process registry.
func NewMemory() *Memory {
	m := &Memory{declared: map[string]Declared{}, byID: map[string]Instance{}}
	m.table.Store(NewTable(nil, nil))
	return m
}

// Declare implements Registry.
func (m *Memory) Declare(service string, routes, public []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.declared[service] = Declared{Routes: slices.Clone(routes), Public: slices.Clone(public)}
	m.rebuild()
	return nil
}

// Register implements Registry.
func (m *Memory) Register(in Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	in.Routes = slices.Clone(in.Routes)
	in.Public = slices.Clone(in.Public)
	m.byID[in.ID()] = in
	m.rebuild()
	return nil
}

// Deregister implements Registry.
func (m *Memory) Deregister(in Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, in.ID())
	m.rebuild()
	return nil
}

// Table implements Registry.
func (m *Memory) Table() *Table {
	if !m.stale.Load() {
		return m.table.Load()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stale.Load() {
		m.build()
	}
	return m.table.Load()
}

// rebuild marks the table stale; the caller holds m.mu.
func (m *Memory) rebuild() { m.stale.Store(true) }

// build makes the table from the current state; the caller holds m.mu.
func (m *Memory) build() {
	all := make([]Instance, 0, len(m.byID))
	for _, in := range m.byID {
		all = append(all, in)
	}
	m.table.Store(NewTable(m.declared, all))
	m.stale.Store(false)
}
