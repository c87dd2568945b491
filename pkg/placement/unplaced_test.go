package placement

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// watching reports whether p's watch runs, which unplaced users need.
func watching(p *Placer) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.live != 0
}

// countGets counts the KV Gets of user's key in bucket that reached the
// server, whichever API the client uses (direct get or a stream message
// get), as any client of the account sees them. The count returned
// includes every Get the server had received when it was called.
func countGets(t *testing.T, srv *server.Server, bucket, user string) func() int {
	t.Helper()
	nc := connect(t, srv)
	msgs := make(chan *nats.Msg, 1024)
	for _, subject := range []string{"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>"} {
		if _, err := nc.ChanSubscribe(subject, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n := 0
	return func() int {
		t.Helper()
		// The server sends the copies before its answer to the flush,
		// and the client queues them on msgs as it reads them.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m.Subject, "KV_"+bucket) && strings.Contains(m.Subject+string(m.Data), user) {
					n++
				}
			default:
				return n
			}
		}
	}
}

func TestUnplacedUserCostsOneLookup(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	store := openStore(t, connect(t, srv), bucket)
	eventually(t, "the placer watches the bucket", func() bool { return watching(p) })
	ctx := context.Background()
	u := users(7)[6]
	gets := countGets(t, srv, bucket, u)

	const n = 20
	for i := range n {
		got, err := p.Place(ctx, Request{User: u}, storages("n2", "n3"))
		if err != nil || len(got) != 2 {
			t.Fatalf("read %d of a user placed nowhere: %v, %v; want every instance", i, got, err)
		}
	}
	if got := gets(); got != 1 {
		t.Fatalf("%d reads of a user placed nowhere made %d lookups, want 1", n, got)
	}

	// Another proxy places the user: once the watch delivered it, every
	// request goes there, and no lookup was needed to learn it.
	if _, _, err := store.Create(ctx, u, Record{Node: "n3", By: "first write"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch delivers the placement", func() bool { n, ok := p.Node(u); return ok && n == "n3" })
	for _, write := range []bool{false, true} {
		got, err := p.Place(ctx, Request{User: u, Write: write}, storages("n2", "n3"))
		if err != nil || len(got) != 1 || got[0].Node != "n3" {
			t.Fatalf("write=%v after the placement was delivered: %v, %v; want n3", write, got, err)
		}
	}
	if got := gets(); got != 1 {
		t.Fatalf("%d lookups, want still 1", got)
	}
}

func TestUnplacedUserFirstWrite(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	a := runPlacer(t, connect(t, srv), bucket)
	b := runPlacer(t, connect(t, srv), bucket)
	eventually(t, "the placers watch the bucket", func() bool { return watching(a) && watching(b) })
	ctx := context.Background()
	u := users(8)[7]
	for _, p := range []*Placer{a, b} {
		if _, err := p.Place(ctx, Request{User: u}, storages("n2", "n3")); err != nil {
			t.Fatal(err)
		}
	}
	// Both remember the user as placed nowhere; each first write goes
	// through the bucket's Create, so both end on one node, whichever
	// wrote first and whatever nodes each sees.
	got, err := a.Place(ctx, Request{User: u, Write: true}, storages("n2"))
	if err != nil || len(got) != 1 || got[0].Node != "n2" {
		t.Fatalf("first write through a: %v, %v; want n2", got, err)
	}
	got, err = b.Place(ctx, Request{User: u, Write: true}, storages("n3", "n4"))
	if !errors.Is(err, ErrInstanceDown) {
		t.Fatalf("write through b, which does not see n2: %v, %v; want placement.instance_down", got, err)
	}
}

func TestUnplacedUsersAreBounded(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	nc := connect(t, srv)
	p := NewPlacer(Options{Store: StoreConfig{Name: bucket}, MaxUnplaced: 3})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, nc) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the placer watches the bucket", func() bool { return watching(p) })
	for _, u := range users(10) {
		if _, err := p.Place(context.Background(), Request{User: u}, storages("n2", "n3")); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.RLock()
	got := len(p.unplaced)
	p.mu.RUnlock()
	if got != 3 {
		t.Fatalf("%d users remembered as placed nowhere, want the bound, 3", got)
	}
}

func TestUnplacedUsersForgottenWhenNATSIsLost(t *testing.T) {
	srv := startServer(t)
	bucket := bucketName(t)
	p := runPlacer(t, connect(t, srv), bucket)
	eventually(t, "the placer watches the bucket", func() bool { return watching(p) })
	ctx := context.Background()
	u := users(9)[8]
	if _, err := p.Place(ctx, Request{User: u}, storages("n2", "n3")); err != nil {
		t.Fatal(err)
	}
	if _, _, unplaced, _ := p.cached(u); !unplaced {
		t.Fatal("the user placed nowhere is not remembered")
	}
	// With NATS away, another proxy may place the user unseen: a read
	// must not go to any instance on the strength of the old lookup,
	// but be 503, as for any user the copy does not know.
	srv.Shutdown()
	srv.WaitForShutdown()
	eventually(t, "the placer notices", func() bool { return !watching(p) })
	_, err := p.Place(ctx, Request{User: u}, storages("n2", "n3"))
	if !errors.Is(err, ErrUnknown) {
		t.Fatalf("read with NATS lost: %v; want placement.unknown", err)
	}
}
