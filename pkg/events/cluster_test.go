package events

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// startCluster starts n servers with JetStream, every one routed to all,
// and returns them once they run (JetStream's meta leader comes later).
func startCluster(t *testing.T, n int) []*testServer {
	t.Helper()
	var routes []string
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	servers := make([]*testServer, n)
	for i := range servers {
		s := &testServer{opts: &server.Options{
			ServerName: fmt.Sprintf("s%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "events-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}}
		s.start(t)
		t.Cleanup(s.stop)
		servers[i] = s
	}
	return servers
}

// TestCluster: in a three-server cluster the stream gets three replicas,
// and events published through one server reach a consumer on another.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster takes seconds to elect its JetStream leader")
	}
	servers := startCluster(t, 3)
	pubConn := connect(t, servers[0], "publisher")
	pub := newPublisher(t, pubConn, nil, PublisherOptions{})
	runPublisher(t, pub)
	rec := newRecorder()
	consConn := connect(t, servers[2], "consumer")
	runConsumer(t, newConsumer(t, consConn, nil, ConsumerOptions{Name: "activity", Handler: rec.handle}))
	for i := range 5 {
		if err := pub.Publish(context.Background(), event(t, "file.written", fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "events across the cluster", func() bool { return rec.count() == 5 })

	js, err := jetstream.New(consConn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Replicas; got != 3 {
		t.Errorf("stream replicas %d, want 3", got)
	}
}
