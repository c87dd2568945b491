package registry

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestNodeName(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"web-1.example.org", "web-1"},
		{"WEB_2", "WEB_2"},
		{"héllo wörld", "h-llo-w-rld"},
		{"", "node"},
		{"...", "node"},
		{strings.Repeat("a", 80), strings.Repeat("a", 64)},
	} {
		got := NodeName(tc.host)
		if got != tc.want {
			t.Errorf("NodeName(%q) = %q, want %q", tc.host, got, tc.want)
		}
		if err := ValidateNodeName(got); err != nil {
			t.Errorf("NodeName(%q) = %q is not a valid node name: %v", tc.host, got, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "a/b", "a*", strings.Repeat("a", 65)} {
		if err := ValidateNodeName(bad); err == nil {
			t.Errorf("ValidateNodeName(%q) accepted it", bad)
		}
	}
}

func TestRecordInstances(t *testing.T) {
	rec := NodeRecord{Node: "n2", Services: []ServiceRecord{
		{Name: "storage", State: StateRunning, Addr: "10.0.0.2:9150", Routes: []string{"/api/v1/files"}},
		{Name: "users", State: "backoff", Addr: "10.0.0.2:9140"},
		{Name: "proxy", State: StateRunning}, // no address yet
	}}
	got := rec.Instances()
	want := []Instance{{Service: "storage", Node: "n2", Addr: "10.0.0.2:9150", Routes: []string{"/api/v1/files"}}}
	if len(got) != 1 || got[0].ID() != want[0].ID() || !slices.Equal(got[0].Routes, want[0].Routes) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestNodeTakenError(t *testing.T) {
	err := error(&NodeTakenError{Node: "n1", Holder: RuntimeInfo{InstanceID: "abc", ControlAddr: "10.0.0.1:9250", StartedAt: time.Unix(0, 0).UTC()}})
	if !errors.Is(err, ErrNodeTaken) {
		t.Error("errors.Is(err, ErrNodeTaken) does not hold")
	}
	for _, want := range []string{`"n1"`, "abc", "10.0.0.1:9250", "OCIS_NODE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

// entry is a watch entry made up in a test.
type entry struct {
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return "test" }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

func put(t *testing.T, rec NodeRecord) entry {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return entry{key: rec.Node, value: data, op: jetstream.KeyValuePut}
}

// TestClusterTable checks the merge: this node's instances come from the
// Memory (with their handlers), other nodes' running ones from the
// watcher, this node's own record in the bucket never, and a table is
// rebuilt only after a change.
func TestClusterTable(t *testing.T) {
	local := NewMemory()
	if err := local.Declare("storage", []string{"/api/v1/files"}, nil); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(WatcherOptions{Self: "n1"})
	c := NewCluster(local, w)

	if owner, ok := c.Table().Owner("/api/v1/files/a"); !ok || owner != "storage" {
		t.Fatalf("declared route lost in the merge: %q %v", owner, ok)
	}
	if err := c.Register(Instance{Service: "users", Node: "n1", Addr: "127.0.0.1:9140", Routes: []string{"/api/v1/users"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// This node's own record in the bucket: listed, never routed to.
	w.apply(put(t, NodeRecord{Node: "n1", Services: []ServiceRecord{{Name: "users", State: StateRunning, Addr: "10.0.0.1:9140"}}}), 1, now, ttl)
	w.apply(put(t, NodeRecord{Node: "n2", Services: []ServiceRecord{
		{Name: "storage", State: StateRunning, Addr: "10.0.0.2:9150", Routes: []string{"/api/v1/files"}},
		{Name: "users", State: "failed", Addr: "10.0.0.2:9140"},
	}}), 1, now, ttl)

	tbl := c.Table()
	if got := ids(tbl.Instances("users")); !slices.Equal(got, []string{"users@n1/127.0.0.1:9140"}) {
		t.Errorf("users instances %v, want only the local one", got)
	}
	if got := ids(tbl.Instances("storage")); !slices.Equal(got, []string{"storage@n2/10.0.0.2:9150"}) {
		t.Errorf("storage instances %v, want n2's", got)
	}
	if tbl != c.Table() {
		t.Error("table rebuilt without a change")
	}
	if got := len(w.Nodes()); got != 2 {
		t.Errorf("%d nodes listed, want 2", got)
	}

	// A rewrite that changes nothing keeps the table.
	w.apply(put(t, NodeRecord{Node: "n2", Services: []ServiceRecord{
		{Name: "storage", State: StateRunning, Addr: "10.0.0.2:9150", Routes: []string{"/api/v1/files"}},
		{Name: "users", State: "failed", Addr: "10.0.0.2:9140"},
	}}), 1, now, ttl)
	if tbl != c.Table() {
		t.Error("table rebuilt after a rewrite that changed nothing")
	}

	// n2 leaves: its storage goes, the route stays declared.
	w.apply(entry{key: "n2", op: jetstream.KeyValueDelete}, 1, now, ttl)
	tbl = c.Table()
	if got := tbl.Instances("storage"); len(got) != 0 {
		t.Errorf("storage instances %v after n2 left", ids(got))
	}
	if owner, ok := tbl.Owner("/api/v1/files/a"); !ok || owner != "storage" {
		t.Errorf("route of a service with no instance: %q %v, want storage (unavailable, not unknown)", owner, ok)
	}
}

// TestWatcherStaleAndResync checks the two ways a node leaves without a
// word from NATS: not heard of for TTL + grace, and missing from a fresh
// watch's initial values.
func TestWatcherStaleAndResync(t *testing.T) {
	w := NewWatcher(WatcherOptions{Self: "me"})
	notices, cancel := w.Subscribe()
	defer cancel()
	t0 := time.Now()
	w.apply(put(t, NodeRecord{Node: "a"}), 1, t0, ttl)
	w.apply(put(t, NodeRecord{Node: "b"}), 1, t0.Add(2*time.Second), ttl)
	<-notices

	w.dropStale(t0.Add(2500*time.Millisecond), 2*time.Second)
	if _, ok := w.Node("a"); ok {
		t.Error("a kept after TTL + grace without a word")
	}
	if _, ok := w.Node("b"); !ok {
		t.Error("b dropped before its time")
	}
	select {
	case <-notices:
	default:
		t.Error("no notice of the drop")
	}

	// A second watch delivers only c: b is gone.
	w.apply(put(t, NodeRecord{Node: "c"}), 2, t0, ttl)
	w.dropOlder(2)
	var got []string
	for _, n := range w.Nodes() {
		got = append(got, n.Node)
	}
	if !slices.Equal(got, []string{"c"}) {
		t.Errorf("nodes %v after the resync, want [c]", got)
	}
}

// TestWatcherLeaderlessStream checks what a watcher makes of a bucket
// whose stream lost its leader with a node's server: a fresh watch
// delivering a node's record again at the same revision does not keep a
// dead node alive, and the expiry of every key when the new leader takes
// over drops only the nodes not heard of for a TTL.
func TestWatcherLeaderlessStream(t *testing.T) {
	w := NewWatcher(WatcherOptions{Self: "me"})
	t0 := time.Now()
	dead, live := put(t, NodeRecord{Node: "dead", Runtime: RuntimeInfo{InstanceID: "d1"}}), put(t, NodeRecord{Node: "live", Runtime: RuntimeInfo{InstanceID: "l1"}})
	dead.rev, live.rev = 7, 8
	w.apply(dead, 1, t0, ttl)
	w.apply(live, 1, t0, ttl)

	// Watches started afresh while the stream has no leader deliver the
	// same revisions; only live's heartbeats arrive.
	for i, at := range []time.Duration{ttl / 2, ttl - 100*time.Millisecond} {
		w.apply(dead, uint64(2+i), t0.Add(at), ttl)
		w.apply(live, uint64(2+i), t0.Add(at), ttl)
		w.heard("live", "l1", t0.Add(at))
	}
	w.dropStale(t0.Add(ttl+50*time.Millisecond), ttl)
	if _, ok := w.Node("dead"); ok {
		t.Error("a node heard of only through its old revision, delivered again, kept past its TTL")
	}
	if _, ok := w.Node("live"); !ok {
		t.Fatal("a node whose heartbeats arrive dropped")
	}

	// The new leader expires every key at once: live, heard a moment ago,
	// stays; a later write of it is taken as usual.
	at := t0.Add(ttl + 200*time.Millisecond)
	w.apply(entry{key: "live", op: jetstream.KeyValuePurge}, 3, at, ttl)
	if _, ok := w.Node("live"); !ok {
		t.Fatal("a node heard within its TTL dropped by its key's expiry")
	}
	w.dropOlder(3)
	if _, ok := w.Node("live"); !ok {
		t.Fatal("a node kept through its key's expiry dropped by the resync")
	}
	live.rev = 12
	w.apply(live, 3, at.Add(100*time.Millisecond), ttl)
	if n, ok := w.Node("live"); !ok || !n.Seen.Equal(at.Add(100*time.Millisecond)) {
		t.Errorf("live's new write: %+v %v", n, ok)
	}

	// An expiry of a node silent for a TTL, and a clean stop, drop at once.
	w.apply(entry{key: "live", op: jetstream.KeyValueDelete}, 3, at.Add(200*time.Millisecond), ttl)
	if _, ok := w.Node("live"); ok {
		t.Error("a deleted key kept its node")
	}
	w.apply(live, 3, at, ttl)
	w.apply(entry{key: "live", op: jetstream.KeyValuePurge}, 3, at.Add(ttl+time.Millisecond), ttl)
	if _, ok := w.Node("live"); ok {
		t.Error("the expiry of a node silent for a TTL kept it")
	}
}
