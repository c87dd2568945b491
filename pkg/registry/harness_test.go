package registry

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// The package's NATS tests share one cluster of three embedded servers:
// forming one (a JetStream meta leader, then a 3-replica bucket) takes
// seconds, far more than any test.
var (
	clusterOnce sync.Once
	shared      *testCluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.shutdown()
	}
	os.Exit(code)
}

// testCluster is three NATS servers with JetStream, routed to the first.
type testCluster struct {
	dir     string
	mu      sync.Mutex
	servers [3]*server.Server
	opts    [3]*server.Options
}

// natsCluster returns the package's cluster, starting it on first use.
func natsCluster(t *testing.T) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("NATS cluster tests take seconds")
	}
	clusterOnce.Do(func() { shared, clusterErr = startCluster() })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return shared
}

func startCluster() (*testCluster, error) {
	dir, err := os.MkdirTemp("", "ocis-registry-test-")
	if err != nil {
		return nil, err
	}
	c := &testCluster{dir: dir}
	// JetStream in a cluster needs routes from the start, so the route
	// ports are chosen first; every server routes to all three (a route
	// to itself is ignored), as every node's ocis.env would say.
	var routes []string
	var ports [3]int
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	for i := range c.servers {
		o := &server.Options{
			ServerName: fmt.Sprintf("s%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   fmt.Sprintf("%s/s%d", dir, i),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "test", Host: "127.0.0.1", Port: ports[i],
				// Clients reach only the servers a test names, so that
				// cutting a client off is possible.
				NoAdvertise: true,
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		if err := c.start(i, o); err != nil {
			c.shutdown()
			return nil, err
		}
	}
	// The cluster is formed once it can place a 3-replica bucket.
	nc, err := nats.Connect(c.url(0))
	if err != nil {
		c.shutdown()
		return nil, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := OpenBucket(ctx, nc, BucketConfig{Name: "formed", TTL: 2 * time.Second, Replicas: 3}); err != nil {
		c.shutdown()
		return nil, fmt.Errorf("cluster did not form: %w", err)
	}
	return c, nil
}

// start runs server i with o, keeping o for a restart with the same
// ports and store.
func (c *testCluster) start(i int, o *server.Options) error {
	s, err := server.NewServer(o)
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("server %d not ready", i)
	}
	// Pin the ports a random port resolved to, so a restart keeps them.
	o = o.Clone()
	o.Port = s.Addr().(*net.TCPAddr).Port
	o.Cluster.Port = s.ClusterAddr().Port
	c.mu.Lock()
	c.servers[i], c.opts[i] = s, o
	c.mu.Unlock()
	return nil
}

// stop shuts server i down.
func (c *testCluster) stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.mu.Unlock()
	s.Shutdown()
	s.WaitForShutdown()
}

// restart starts server i again where it was.
func (c *testCluster) restart(t *testing.T, i int) {
	t.Helper()
	c.mu.Lock()
	o := c.opts[i]
	c.mu.Unlock()
	if err := c.start(i, o); err != nil {
		t.Fatal(err)
	}
}

func (c *testCluster) url(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
}

func (c *testCluster) urls() []string {
	return []string{c.url(0), c.url(1), c.url(2)}
}

func (c *testCluster) shutdown() {
	for _, s := range c.servers {
		if s != nil {
			s.Shutdown()
		}
	}
	for _, s := range c.servers {
		if s != nil {
			s.WaitForShutdown()
		}
	}
	_ = os.RemoveAll(c.dir)
}

// testLogger logs to the test when -v is given, else nowhere. Lines
// that come after the test's cleanups began (NATS callbacks run
// asynchronously) are dropped: the test may no longer log.
func testLogger(t *testing.T, who string) log.Logger {
	if !testing.Verbose() {
		return log.NewNopLogger()
	}
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return log.With(log.NewLogfmtLogger(w), "who", who)
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// connect opens a client of urls that reconnects fast; closed with the
// test.
func connect(t *testing.T, who string, urls ...string) *nats.Conn {
	t.Helper()
	nc, err := natsconn.Connect(natsconn.Options{
		URLs: urls, Name: who, ReconnectWait: 50 * time.Millisecond, PingInterval: 500 * time.Millisecond,
		Logger: testLogger(t, who),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var (
	buckets    sync.Map // *testing.T → its bucket's name
	bucketRuns atomic.Int64
)

// bucketName is a bucket of the test's own, new for every run of it
// (-count): the cluster outlives the runs.
func bucketName(t *testing.T) string {
	name, _ := buckets.LoadOrStore(t, fmt.Sprintf("reg-%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), bucketRuns.Add(1)))
	return name.(string)
}

// openBucket opens the test's bucket on nc.
func openBucket(t *testing.T, nc *nats.Conn, ttl time.Duration) *Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBucket(ctx, nc, BucketConfig{Name: bucketName(t), TTL: ttl, Logger: testLogger(t, "bucket")})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// watch runs a watcher of the test's bucket on nc until the test ends.
func watch(t *testing.T, nc *nats.Conn, ttl time.Duration, opts WatcherOptions) *Watcher {
	t.Helper()
	b := openBucket(t, nc, ttl)
	if opts.Logger == nil {
		opts.Logger = testLogger(t, "watcher")
	}
	w := NewWatcher(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, b) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return w
}

// announce announces rec in the test's bucket on nc; closed with the test
// unless closed before.
func announce(t *testing.T, nc *nats.Conn, ttl time.Duration, rec NodeRecord) *Announcer {
	t.Helper()
	a, err := tryAnnounce(t, nc, ttl, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return a
}

func tryAnnounce(t *testing.T, nc *nats.Conn, ttl time.Duration, rec NodeRecord) (*Announcer, error) {
	t.Helper()
	b := openBucket(t, nc, ttl)
	ctx, cancel := context.WithTimeout(context.Background(), ttl+5*time.Second)
	defer cancel()
	return Announce(ctx, b, rec, AnnounceOptions{Logger: testLogger(t, "announcer "+rec.Node)})
}

// record is a node record with running services name=addr.
func record(node, instance string, services ...string) NodeRecord {
	rec := NodeRecord{Node: node, Runtime: RuntimeInfo{InstanceID: instance, ControlAddr: "127.0.0.1:9250", StartedAt: time.Now().UTC()}}
	for _, s := range services {
		name, addr, _ := strings.Cut(s, "=")
		rec.Services = append(rec.Services, ServiceRecord{Name: name, State: StateRunning, Addr: addr, Routes: []string{"/api/v1/" + name}, Since: time.Now().UTC()})
	}
	return rec
}

// waitFor polls cond until it holds or timeout passes, and returns how
// long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// hasNode reports whether w knows node with instance id (any id when
// empty).
func hasNode(w *Watcher, node, id string) bool {
	n, ok := w.Node(node)
	return ok && (id == "" || n.Runtime.InstanceID == id)
}

// cutter is a TCP forwarder to one server that a test can cut, to make a
// server unreachable for one client without touching the cluster.
type cutter struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	c := &cutter{target: strings.TrimPrefix(target, "nats://")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(c.cut)
	return c
}

func (c *cutter) url() string { return "nats://" + c.addr }

func (c *cutter) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", c.target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection: the client
// sees its server gone and every reconnection refused.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// heal listens again on the same address.
func (c *cutter) heal(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.serve(ln)
}
