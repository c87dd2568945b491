package placement

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/registry"
)

func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%032x", i*7919+1)
	}
	return out
}

func TestChooseSpreadsAndMovesLittle(t *testing.T) {
	all := users(3000)
	before := map[string]string{}
	count := map[string]int{}
	for _, u := range all {
		n := Choose(u, []string{"n2", "n3", "n4"})
		before[u] = n
		count[n]++
	}
	for _, n := range []string{"n2", "n3", "n4"} {
		if got := count[n]; got < 800 || got > 1200 {
			t.Errorf("node %s chosen for %d of 3000 users; want about 1000", n, got)
		}
	}
	t.Run("a node joins: only users it wins move, and only to it", func(t *testing.T) {
		moved := 0
		for _, u := range all {
			got := Choose(u, []string{"n5", "n3", "n2", "n4"})
			if got != before[u] {
				moved++
				if got != "n5" {
					t.Fatalf("user %s moved from %s to %s, not to the new node", u, before[u], got)
				}
			}
		}
		if moved < 500 || moved > 1000 {
			t.Errorf("%d of 3000 users would go to the fourth node; want about 750", moved)
		}
	})
	t.Run("a node leaves: only its users move", func(t *testing.T) {
		for _, u := range all {
			got := Choose(u, []string{"n2", "n4"})
			if before[u] != "n3" && got != before[u] {
				t.Fatalf("user %s of %s moved to %s when n3 left", u, before[u], got)
			}
		}
	})
	if got := Choose("u", nil); got != "" {
		t.Errorf("Choose over no node = %q, want empty", got)
	}
}

func TestDecodeRecord(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    string
		invalid bool
	}{
		{value: `{"node":"n2","username":"alice"}`, want: "n2"},
		{value: "n3\n", want: "n3"},
		{value: `{"username":"alice"}`, invalid: true},
		{value: `{"node":`, invalid: true},
		{value: "", invalid: true},
	} {
		got, err := decodeRecord([]byte(tc.value))
		if tc.invalid != (err != nil) || got.Node != tc.want {
			t.Errorf("decodeRecord(%q) = %q, %v; want %q, invalid %v", tc.value, got.Node, err, tc.want, tc.invalid)
		}
	}
}

func TestStaticPlacer(t *testing.T) {
	p := Static()
	ctx := context.Background()
	one := storages("n1")
	got, err := p.Place(ctx, Request{User: "u1", Write: true}, one)
	if err != nil || len(got) != 1 {
		t.Fatalf("one storage node without NATS: %v, %v; want it", got, err)
	}
	// Two instances on one node are still one place.
	sameNode := append(storages("n1"), registry.Instance{Service: "storage", Node: "n1", Addr: "127.0.0.1:9151"})
	if _, err := p.Place(ctx, Request{User: "u1"}, sameNode); err != nil {
		t.Fatalf("two instances on one node: %v", err)
	}
	_, err = p.Place(ctx, Request{User: "u1"}, storages("n1", "n2"))
	if !errors.Is(err, ErrNotRecorded) || apierr.CodeOf(err) != apierr.CodeUnavailable {
		t.Fatalf("two storage nodes without NATS: %v; want placement.not_recorded (503)", err)
	}
	// The second node may come after several instances of the first.
	if _, err := p.Place(ctx, Request{User: "u1"}, append(sameNode, storages("n2")...)); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("n1, n1, n2 without NATS: %v; want placement.not_recorded", err)
	}
	if got, err := p.Place(ctx, Request{User: "u1"}, nil); err != nil || len(got) != 0 {
		t.Fatalf("no storage at all: %v, %v; want none and no error", got, err)
	}
	// It is asked on every proxied request of a single node.
	if allocs := testing.AllocsPerRun(100, func() { _, _ = p.Place(ctx, Request{User: "u1"}, sameNode) }); allocs != 0 {
		t.Errorf("static Place allocates %.0f times per call; want 0", allocs)
	}
}

func TestFirstWritePlacesAndTheChoiceNeverMoves(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	store := openStore(t, connect(t, srv), bucket)
	ctx := context.Background()
	u := users(1)[0]

	got, err := p.Place(ctx, Request{User: u, Username: "alice", Write: true}, storages("n2", "n3"))
	if err != nil || len(got) != 1 {
		t.Fatalf("first write: %v, %v", got, err)
	}
	placed := got[0].Node
	rec, found, err := store.Get(ctx, u)
	if err != nil || !found || rec.Node != placed || rec.Username != "alice" || rec.By != "first write" {
		t.Fatalf("bucket holds %+v, %v, %v; want node %s for alice", rec, found, err, placed)
	}

	for _, tc := range []struct {
		name      string
		instances []registry.Instance
		write     bool
	}{
		{"new nodes join", storages("n4", "n5", "n6", "n3", "n2"), true},
		{"order changes", storages("n3", "n2"), false},
		{"the placed node has two instances", append(storages("n2", "n3"), registry.Instance{Service: "storage", Node: placed, Addr: "10.0.0.9:9150"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Place(ctx, Request{User: u, Write: tc.write}, tc.instances)
			if err != nil || len(got) == 0 {
				t.Fatalf("got %v, %v", got, err)
			}
			for _, in := range got {
				if in.Node != placed {
					t.Fatalf("routed to %s; placed on %s", in.Node, placed)
				}
			}
		})
	}

	other := "n3"
	if placed == "n3" {
		other = "n2"
	}
	t.Run("the placed node is down: 503 for reads and writes", func(t *testing.T) {
		for _, write := range []bool{false, true} {
			got, err := p.Place(ctx, Request{User: u, Write: write}, storages(other, "n4"))
			if !errors.Is(err, ErrInstanceDown) || apierr.CodeOf(err) != apierr.CodeUnavailable || got != nil {
				t.Fatalf("write=%v: %v, %v; want placement.instance_down", write, got, err)
			}
		}
		rec, _, _ := store.Get(ctx, u)
		if rec.Node != placed {
			t.Fatalf("placement moved to %s while its node was down", rec.Node)
		}
	})
	t.Run("a second proxy knows it without the watch", func(t *testing.T) {
		// A fresh placer whose watch may not have delivered yet: the
		// direct lookup on a miss finds the placement.
		q := NewPlacer(Options{})
		q.setStore(store)
		got, err := q.Place(ctx, Request{User: u}, storages("n2", "n3"))
		if err != nil || len(got) != 1 || got[0].Node != placed {
			t.Fatalf("got %v, %v; want %s", got, err, placed)
		}
	})
}

func TestReadsDoNotPlace(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	store := openStore(t, connect(t, srv), bucket)
	ctx := context.Background()
	u := users(2)[1]
	all := storages("n2", "n3")
	got, err := p.Place(ctx, Request{User: u}, all)
	if err != nil || len(got) != 2 {
		t.Fatalf("read without placement: %v, %v; want every instance", got, err)
	}
	if _, found, _ := store.Get(ctx, u); found {
		t.Fatal("a read placed the user")
	}
	if _, ok := p.Node(u); ok {
		t.Fatal("a read left a placement in the copy")
	}
	// No instance at all: nothing to place on, and no error of its own
	// (the proxy says no instance runs).
	got, err = p.Place(ctx, Request{User: u, Write: true}, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("write with no instance: %v, %v", got, err)
	}
	if _, found, _ := store.Get(ctx, u); found {
		t.Fatal("a write with no instance placed the user")
	}
}

func TestRacingFirstWritesPickOneWinner(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	// Two proxies, each seeing a different set of storage nodes (one
	// joined meanwhile), so that their own choices differ for many users.
	a := runPlacer(t, connect(t, srv), bucket)
	b := runPlacer(t, connect(t, srv), bucket)
	store := openStore(t, connect(t, srv), bucket)
	ctx := context.Background()
	all := users(60)
	seenA := storages("n2", "n3")
	seenB := storages("n2", "n3", "n4")
	differ := 0
	for _, u := range all {
		if Choose(u, []string{"n2", "n3"}) != Choose(u, []string{"n2", "n3", "n4"}) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("test users do not exercise a disagreement")
	}
	var wg sync.WaitGroup
	gotA := make([]string, len(all))
	gotB := make([]string, len(all))
	place := func(p *Placer, seen []registry.Instance, out []string) {
		defer wg.Done()
		for i, u := range all {
			got, err := p.Place(ctx, Request{User: u, Write: true}, seen)
			switch {
			case errors.Is(err, ErrInstanceDown):
				// Placed by the other proxy on a node this one does
				// not see: 503, never a write elsewhere.
				out[i] = "down"
			case err != nil || len(got) != 1:
				t.Errorf("user %s: %v, %v", u, got, err)
				return
			default:
				out[i] = got[0].Node
			}
		}
	}
	wg.Add(2)
	go place(a, seenA, gotA)
	go place(b, seenB, gotB)
	wg.Wait()
	for i, u := range all {
		rec, found, err := store.Get(ctx, u)
		if err != nil || !found {
			t.Fatalf("user %s not placed: %v", u, err)
		}
		wantA := rec.Node
		if rec.Node == "n4" {
			wantA = "down"
		}
		if gotA[i] != wantA || gotB[i] != rec.Node {
			t.Errorf("user %s: proxy a wrote to %s, proxy b to %s, bucket says %s", u, gotA[i], gotB[i], rec.Node)
		}
	}
	t.Logf("%d of %d users had differing first choices", differ, len(all))
}

func TestWatchedCopyFollowsOperatorMoves(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	store := openStore(t, connect(t, srv), bucket)
	ctx := context.Background()
	u := users(3)[2]

	// A placement made elsewhere reaches the copy by push.
	if _, _, err := store.Create(ctx, u, Record{Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the copy learns the placement", func() bool { n, ok := p.Node(u); return ok && n == "n2" })
	// A move by the operator.
	if err := store.Set(ctx, u, Record{Node: "n3", By: "operator"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the copy learns the move", func() bool { n, _ := p.Node(u); return n == "n3" })
	got, err := p.Place(ctx, Request{User: u, Write: true}, storages("n2", "n3"))
	if err != nil || len(got) != 1 || got[0].Node != "n3" {
		t.Fatalf("after the move: %v, %v; want n3", got, err)
	}
	// A deletion: the next write places the user afresh.
	if err := store.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the copy forgets the placement", func() bool { _, ok := p.Node(u); return !ok })

	list, err := store.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("list after delete: %v, %v", list, err)
	}
}

func TestNATSDownKnownPlacementsKeepWorking(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	ctx := context.Background()
	all := users(5)
	known, unknown := all[3], all[4]
	got, err := p.Place(ctx, Request{User: known, Write: true}, storages("n2", "n3"))
	if err != nil {
		t.Fatal(err)
	}
	placed := got[0].Node

	srv.Shutdown()
	srv.WaitForShutdown()

	got, err = p.Place(ctx, Request{User: known, Write: true}, storages("n2", "n3"))
	if err != nil || len(got) != 1 || got[0].Node != placed {
		t.Fatalf("known user with NATS down: %v, %v; want %s", got, err, placed)
	}
	for _, write := range []bool{false, true} {
		start := time.Now()
		_, err = p.Place(ctx, Request{User: unknown, Write: write}, storages("n2", "n3"))
		if !errors.Is(err, ErrUnknown) || apierr.CodeOf(err) != apierr.CodeUnavailable {
			t.Fatalf("unknown user, write=%v, NATS down: %v; want placement.unknown", write, err)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("the answer took %s; the lookup is bounded by 1s", took)
		}
	}
}

func TestRequestsWaitForTheBucketAtStart(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := NewPlacer(Options{Store: StoreConfig{Name: bucket}, LookupTimeout: 3 * time.Second})
	u := users(6)[5]
	type answer struct {
		got []registry.Instance
		err error
	}
	done := make(chan answer, 1)
	go func() {
		got, err := p.Place(context.Background(), Request{User: u, Write: true}, storages("n2", "n3"))
		done <- answer{got, err}
	}()
	// The bucket opens a moment after the request came (the local nats
	// server starting): the request waits for it instead of failing.
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx, connect(t, srv)) }()
	a := <-done
	if a.err != nil || len(a.got) != 1 {
		t.Fatalf("a write during the start: %v, %v; want it placed", a.got, a.err)
	}

	// Never opened: the wait is bounded.
	q := NewPlacer(Options{LookupTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := q.Place(context.Background(), Request{User: u}, storages("n2", "n3"))
	if !errors.Is(err, ErrUnknown) || time.Since(start) > time.Second {
		t.Fatalf("no bucket: %v after %s; want placement.unknown within the lookup timeout", err, time.Since(start))
	}
}

func TestValidateUser(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"a", true},
		{"A-z_9", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"a.b", false},
		{"a b", false},
		{"a/b", false},
		{"a*", false},
		{"é", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateUser(tc.id)
			if got := err == nil; got != tc.want {
				t.Fatalf("ValidateUser(%q) = %v, want valid %v", tc.id, err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ValidateUser(%q) = %v, want ErrInvalidKey", tc.id, err)
			}
		})
	}
}

// TestReadRightAfterAnotherProxysFirstWrite checks that a user this
// placer saw placed nowhere, and whom another proxy then placed, is read
// from the user's node at once, before this placer's watch delivered the
// placement: the file just written is there, not a 404 from elsewhere.
func TestReadRightAfterAnotherProxysFirstWrite(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	other := openStore(t, connect(t, srv), bucket) // the other proxy
	ctx := context.Background()
	for i, u := range users(50) {
		got, err := p.Place(ctx, Request{User: u}, storages("n2", "n3"))
		if err != nil || len(got) != 2 {
			t.Fatalf("user %d placed nowhere: %v, %v; want both instances", i, got, err)
		}
		if _, _, err := other.Create(ctx, u, Record{Node: "n3", By: "first write"}); err != nil {
			t.Fatal(err)
		}
		got, err = p.Place(ctx, Request{User: u}, storages("n2", "n3"))
		if err != nil || len(got) != 1 || got[0].Node != "n3" {
			t.Fatalf("user %d, read right after another proxy placed them on n3: %v, %v; want n3 only", i, got, err)
		}
	}
}
