package registry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

const ttl = 2 * time.Second

// TestBucket checks the bucket's shape: the TTL, expiry markers, one
// revision per key, three replicas in a cluster of three; and that an
// existing bucket keeps its TTL.
func TestBucket(t *testing.T) {
	c := natsCluster(t)
	nc := connect(t, "bucket", c.url(0))
	b := openBucket(t, nc, ttl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, err := b.kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.TTL() != ttl || status.LimitMarkerTTL() == 0 || status.History() != 1 {
		t.Errorf("ttl %s, marker ttl %s, history %d; want %s, set, 1", status.TTL(), status.LimitMarkerTTL(), status.History(), ttl)
	}
	if got := b.Replicas(); got != 3 {
		t.Errorf("replicas %d, want 3 in a cluster of three", got)
	}
	again, err := OpenBucket(ctx, nc, BucketConfig{Name: bucketName(t), TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if again.TTL() != ttl {
		t.Errorf("reopened with TTL %s, want the bucket's %s", again.TTL(), ttl)
	}
}

// TestAnnounceSeenElsewhere checks that a node's record, and each change
// of it, reach a watcher connected to another server, and that a clean
// Close removes the node at once.
func TestAnnounceSeenElsewhere(t *testing.T) {
	c := natsCluster(t)
	w := watch(t, connect(t, "watcher", c.url(2)), ttl, WatcherOptions{Self: "w"})
	notices, unsubscribe := w.Subscribe()
	defer unsubscribe()
	local := NewMemory()
	reg := NewCluster(local, w)

	a := announce(t, connect(t, "n1", c.url(0)), ttl, record("n1", "i1", "storage=127.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 seen", func() bool { return hasNode(w, "n1", "i1") })
	<-notices
	if got := ids(reg.Table().Instances("storage")); !slices.Equal(got, []string{"storage@n1/127.0.0.1:9150"}) {
		t.Fatalf("storage instances %v, want n1's", got)
	}

	// A change reaches the watcher at once, not at the next rewrite.
	changed := record("n1", "i1", "users=127.0.0.1:9140")
	changed.Services = append(changed.Services, ServiceRecord{Name: "storage", State: "failed", Addr: "127.0.0.1:9150", Restarts: 11, LastError: "disk full"})
	start := time.Now()
	a.Publish(changed)
	waitFor(t, ttl/3, "the change seen", func() bool {
		return len(reg.Table().Instances("users")) == 1 && len(reg.Table().Instances("storage")) == 0
	})
	t.Logf("change seen after %s", time.Since(start).Round(time.Millisecond))
	n, _ := w.Node("n1")
	if got := n.Services[1]; got.State != "failed" || got.Restarts != 11 || got.LastError != "disk full" {
		t.Errorf("storage as seen: %+v", got)
	}

	// Rewrites keep it there past several TTLs without notices.
	drain(notices)
	time.Sleep(2 * ttl)
	if !hasNode(w, "n1", "i1") {
		t.Fatal("n1 expired although its announcer runs")
	}
	select {
	case <-notices:
		t.Error("a rewrite that changed nothing was notified")
	default:
	}

	// A clean stop removes it long before its TTL.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, ttl, "n1 gone after Close", func() bool { return !hasNode(w, "n1", "") })
	t.Logf("gone %s after Close", time.Since(start).Round(time.Millisecond))
	if took > ttl/2 {
		t.Errorf("a clean stop took %s to be seen; it must not wait for the TTL", took)
	}
	if got := reg.Table().Instances("users"); len(got) != 0 {
		t.Errorf("users still routed to %v", ids(got))
	}
}

// TestExpiry checks that a node that stops writing without a word (its
// process died) leaves every watcher within TTL + 1 s.
func TestExpiry(t *testing.T) {
	c := natsCluster(t)
	w := watch(t, connect(t, "watcher", c.url(1)), ttl, WatcherOptions{Self: "w"})
	nc := connect(t, "n1", c.url(0))
	announce(t, nc, ttl, record("n1", "i1", "storage=127.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 seen", func() bool { return hasNode(w, "n1", "i1") })

	nc.Close() // the process dies: no delete, no more rewrites
	took := waitFor(t, ttl+time.Second, "n1 expired", func() bool { return !hasNode(w, "n1", "") })
	t.Logf("expired %s after the last connection closed (TTL %s)", took.Round(time.Millisecond), ttl)
}

// TestNameClash checks that a second live runtime cannot take a node
// name, that the holder keeps it, and that a runtime restarted after a
// crash gets its name back once the dead one's key expires.
func TestNameClash(t *testing.T) {
	c := natsCluster(t)
	w := watch(t, connect(t, "watcher", c.url(2)), ttl, WatcherOptions{Self: "w"})
	first := connect(t, "first", c.url(0))
	announce(t, first, ttl, record("n1", "first", "storage=127.0.0.1:9150"))

	start := time.Now()
	_, err := tryAnnounce(t, connect(t, "second", c.url(1)), ttl, record("n1", "second", "storage=127.0.0.2:9150"))
	var taken *NodeTakenError
	if !errors.As(err, &taken) || !errors.Is(err, ErrNodeTaken) {
		t.Fatalf("second runtime of n1: %v, want a NodeTakenError", err)
	}
	if taken.Holder.InstanceID != "first" {
		t.Errorf("the error names holder %q, want first", taken.Holder.InstanceID)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if time.Since(start) > ttl/2+time.Second {
		t.Errorf("refusal took %s; a live holder shows itself within TTL/3", time.Since(start))
	}
	if !hasNode(w, "n1", "first") {
		t.Error("the holder lost its entry to the refused runtime")
	}

	// The holder dies; a restart under the same name waits out its key.
	first.Close()
	start = time.Now()
	announce(t, connect(t, "restarted", c.url(1)), ttl, record("n1", "restarted", "storage=127.0.0.2:9150"))
	t.Logf("restart claimed the name after %s", time.Since(start).Round(time.Millisecond))
	if time.Since(start) > ttl+time.Second {
		t.Errorf("claim took %s, more than TTL + 1 s", time.Since(start))
	}
	waitFor(t, 2*time.Second, "the restarted runtime seen", func() bool { return hasNode(w, "n1", "restarted") })
}

// TestSameInstanceTakesOver checks that a runtime announcing again (its
// announcer replaced in the same process) takes its own key over at once.
func TestSameInstanceTakesOver(t *testing.T) {
	c := natsCluster(t)
	nc := connect(t, "n1", c.url(0))
	a := announce(t, nc, ttl, record("n1", "same", "storage=127.0.0.1:9150"))
	// Stop the rewrites without deleting, as a runtime whose announcer
	// goroutine was replaced.
	a.once.Do(func() { close(a.stop) })
	<-a.done
	start := time.Now()
	announce(t, nc, ttl, record("n1", "same", "users=127.0.0.1:9140"))
	if took := time.Since(start); took > ttl/2 {
		t.Errorf("re-announcing took %s", took)
	}
}

// TestWatchFailover checks that the watch goes on when the server its
// client is connected to shuts down: the client moves to another server
// (it knows all three), and changes keep arriving.
func TestWatchFailover(t *testing.T) {
	c := natsCluster(t)
	const ttl = 3 * time.Second // room for a stream leader election
	wnc := connect(t, "watcher", c.urls()...)
	w := watch(t, wnc, ttl, WatcherOptions{Self: "w"})
	a := announce(t, connect(t, "n1", c.urls()...), ttl, record("n1", "i1", "storage=127.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 seen", func() bool { return hasNode(w, "n1", "i1") })

	victim := -1
	for i := range c.servers {
		if c.servers[i].ID() == wnc.ConnectedServerId() {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("watcher connected to no server of the cluster (%s)", wnc.ConnectedUrlRedacted())
	}
	t.Logf("shutting down s%d, the watcher's server", victim)
	c.stop(victim)
	defer func() {
		c.restart(t, victim)
		// Later tests need three servers again.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := OpenBucket(ctx, connect(t, "rejoin", c.url(victim)), BucketConfig{Name: bucketName(t) + "-rejoined", TTL: ttl, Replicas: 3}); err != nil {
			t.Errorf("s%d did not rejoin: %v", victim, err)
		}
	}()

	start := time.Now()
	a.Publish(record("n1", "i1", "storage=127.0.0.1:9150", "users=127.0.0.1:9140"))
	waitFor(t, 20*time.Second, "a change seen after the failover", func() bool {
		n, ok := w.Node("n1")
		return ok && len(n.Services) == 2
	})
	t.Logf("change seen %s after the shutdown, watcher now on %s", time.Since(start).Round(time.Millisecond), wnc.ConnectedServerName())
	// And a node that joins afterwards.
	announce(t, connect(t, "n2", c.urls()...), ttl, record("n2", "i2", "storage=127.0.0.2:9150"))
	waitFor(t, 10*time.Second, "a new node seen after the failover", func() bool { return hasNode(w, "n2", "i2") })
}

// TestLastKnownWhileCutOff checks that a watcher cut off from NATS keeps
// the last known records for TTL + grace, drops them then, and finds them
// again once it reconnects.
func TestLastKnownWhileCutOff(t *testing.T) {
	c := natsCluster(t)
	const grace = time.Second
	link := newCutter(t, c.url(0))
	w := watch(t, connect(t, "watcher", link.url()), ttl, WatcherOptions{Self: "w", Grace: grace})
	reg := NewCluster(NewMemory(), w)
	announce(t, connect(t, "n1", c.url(1)), ttl, record("n1", "i1", "storage=127.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 seen", func() bool { return hasNode(w, "n1", "i1") })

	seen, _ := w.Node("n1")
	link.cut()
	cutAt := time.Now()
	// Kept while NATS is away: the proxy goes on routing.
	waitFor(t, ttl+grace+2*time.Second, "n1 dropped", func() bool {
		if time.Since(seen.Seen) < ttl+grace-50*time.Millisecond && len(reg.Table().Instances("storage")) != 1 {
			t.Fatalf("n1 dropped %s after it was last seen, before TTL + grace", time.Since(seen.Seen))
		}
		return !hasNode(w, "n1", "")
	})
	t.Logf("dropped %s after the cut, %s after last seen", time.Since(cutAt).Round(time.Millisecond), time.Since(seen.Seen).Round(time.Millisecond))
	if got := reg.Table().Instances("storage"); len(got) != 0 {
		t.Errorf("still routed to %v", ids(got))
	}

	link.heal(t)
	waitFor(t, 10*time.Second, "n1 seen again after the reconnection", func() bool { return hasNode(w, "n1", "i1") })
}

// TestAnnouncerRecovers checks that a node whose key expired while it
// was cut off writes it again on reconnection.
func TestAnnouncerRecovers(t *testing.T) {
	c := natsCluster(t)
	w := watch(t, connect(t, "watcher", c.url(2)), ttl, WatcherOptions{Self: "w"})
	link := newCutter(t, c.url(0))
	announce(t, connect(t, "n1", link.url()), ttl, record("n1", "i1", "storage=127.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 seen", func() bool { return hasNode(w, "n1", "i1") })
	link.cut()
	waitFor(t, ttl+time.Second, "n1 expired while cut off", func() bool { return !hasNode(w, "n1", "") })
	link.heal(t)
	waitFor(t, 10*time.Second, "n1 back after the reconnection", func() bool { return hasNode(w, "n1", "i1") })
}

// TestSelfNotRemote checks that a node's own record is listed but never
// routed to from the bucket: its instances come from its Memory.
func TestSelfNotRemote(t *testing.T) {
	c := natsCluster(t)
	nc := connect(t, "n1", c.url(0))
	w := watch(t, nc, ttl, WatcherOptions{Self: "n1"})
	announce(t, nc, ttl, record("n1", "i1", "storage=10.0.0.1:9150"))
	waitFor(t, 5*time.Second, "n1 listed", func() bool { return hasNode(w, "n1", "i1") })
	if got := w.RemoteInstances(); len(got) != 0 {
		t.Errorf("own instances taken as remote: %v", ids(got))
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestReplicas checks min(3, cluster size): a single server gets one
// replica, and a bucket made while the cluster was small grows to three.
func TestReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	single, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	single.Start()
	defer single.Shutdown()
	if !single.ReadyForConnections(10 * time.Second) {
		t.Fatal("single server not ready")
	}
	b := openBucket(t, connect(t, "single", single.ClientURL()), ttl)
	if got := b.Replicas(); got != 1 {
		t.Errorf("replicas on a single server: %d, want 1", got)
	}
	b.scaleUp(ctx)
	if got := b.Replicas(); got != 1 {
		t.Errorf("replicas on a single server after a scale-up: %d, want 1", got)
	}

	// In the cluster, a bucket the first node made alone.
	c := natsCluster(t)
	nc := connect(t, "cluster", c.url(0))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucketName(t), TTL: ttl, LimitMarkerTTL: ttl, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	b = openBucket(t, nc, ttl)
	for want := 2; want <= 3; want++ {
		b.mu.Lock()
		b.lastScale = time.Time{} // at most once a minute otherwise
		b.mu.Unlock()
		b.scaleUp(ctx)
		if got := b.Replicas(); got != want {
			t.Fatalf("replicas after a scale-up: %d, want %d", got, want)
		}
	}
	status, err := b.kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := status.Config().Replicas; got != 3 {
		t.Errorf("bucket has %d replicas, want 3", got)
	}
	b.mu.Lock()
	b.lastScale = time.Time{}
	b.mu.Unlock()
	b.scaleUp(ctx) // at three: nothing to do
	if got := b.Replicas(); got != 3 {
		t.Errorf("replicas %d after a scale-up at three", got)
	}
}
