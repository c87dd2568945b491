package placement

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

// startServer runs one embedded NATS server with JetStream for the test
// (ready in tens of milliseconds); a single server is all placement needs
// to be tested, since the bucket's replication is JetStream's.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: "placement-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// connect opens a client connection to s that retries for the test's
// length, as natsconn.Connect does in the binary.
func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://%s", s.Addr().(*net.TCPAddr).String()),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var bucketSeq atomic.Uint64

// bucketName gives each test a bucket of its own.
func bucketName(t *testing.T) string {
	return fmt.Sprintf("placement-test-%d", bucketSeq.Add(1))
}

// runPlacer starts a placer following bucket on nc and waits until its
// store is open.
func runPlacer(t *testing.T, nc *nats.Conn, bucket string) *Placer {
	t.Helper()
	p := NewPlacer(Options{Store: StoreConfig{Name: bucket}, LookupTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, nc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("placer run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !p.Opened() {
		if time.Now().After(deadline) {
			t.Fatal("placement bucket did not open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

// openStore opens bucket on nc directly, as the operator's CLI does.
func openStore(t *testing.T, nc *nats.Conn, bucket string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenStore(ctx, nc, StoreConfig{Name: bucket})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storages returns one storage instance per node.
func storages(nodes ...string) []registry.Instance {
	out := make([]registry.Instance, 0, len(nodes))
	for i, n := range nodes {
		out = append(out, registry.Instance{Service: "storage", Node: n, Addr: fmt.Sprintf("127.0.0.%d:9150", i+2)})
	}
	return out
}

// eventually retries cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
