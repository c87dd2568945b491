package nats

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
)

// loopbackConfig is a config on free loopback ports with its data in dir.
func loopbackConfig(dir string) *Config {
	c := newConfig()
	c.base.HTTPAddr, c.base.DebugAddr, c.base.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readyz(addr string) int {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestRun checks the service's life: ready with JetStream, its store in
// the data dir, shared in-process through the Embedded handle, and gone
// when its context ends.
func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats-data")
	env := testEnv(t)
	env.NATS = natsconn.NewEmbedded()
	r := servicetest.Start(t, loopbackConfig(dir), env)

	if got := readyz(r.Addrs.Debug); got != http.StatusOK {
		t.Fatalf("readyz %d, want 200", got)
	}
	if !env.NATS.Running() {
		t.Fatal("the embedded server is not shared once the service is up")
	}
	// In-process through the handle, with JetStream: a KV bucket works.
	nc, err := natsconn.Connect(natsconn.Options{Embedded: env.NATS, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "connected", nc.IsConnected)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// The store is under the data dir.
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("no JetStream store in the data dir: %v", err)
	}
	// The client port answers over the network too.
	if c, err := net.Dial("tcp", r.Addrs.HTTP); err != nil {
		t.Errorf("client port %s: %v", r.Addrs.HTTP, err)
	} else {
		c.Close()
	}

	if err := r.Stop(t); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if env.NATS.Running() {
		t.Error("the embedded server is still shared after the stop")
	}
	if got := readyz(r.Addrs.Debug); got != 0 {
		t.Errorf("debug listener still answers (%d) after the stop", got)
	}

	// A restart on the same data dir finds the bucket again.
	r2 := servicetest.Start(t, loopbackConfig(dir), env)
	nc2, err := nats.Connect("nats://" + r2.Addrs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	kv2, err := js2.KeyValue(ctx, "probe")
	if err != nil {
		t.Fatalf("bucket lost across a restart: %v", err)
	}
	if e, err := kv2.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("value lost across a restart: %v", err)
	}
}

// TestRunPortTaken checks that a taken client port is an error from Run,
// at once, and not an exit of the process.
func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := loopbackConfig(t.TempDir())
	c.base.HTTPAddr = ln.Addr().String()
	svc, err := c.Build(testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background(), func(service.Addrs) { t.Error("up called") }) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("got %v, want a listen error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestCredentials checks that a server with credentials refuses a client
// without them and accepts one with them.
func TestCredentials(t *testing.T) {
	c := loopbackConfig(t.TempDir())
	c.User, c.Password = "ocis", "s3cret"
	r := servicetest.Start(t, c, testEnv(t))
	if _, err := nats.Connect("nats://" + r.Addrs.HTTP); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("without credentials: %v, want an authorization error", err)
	}
	nc, err := nats.Connect("nats://"+r.Addrs.HTTP, nats.UserInfo("ocis", "s3cret"))
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	nc.Close()
}

// TestCluster checks that two servers joined by a route with route
// credentials pass messages between their clients.
func TestCluster(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	routeA, routeB := free(), free()
	start := func(node, route, peer string) *servicetest.Running {
		c := loopbackConfig(t.TempDir())
		c.ClusterAddr, c.Routes = route, []string{"nats-route://" + peer}
		c.ClusterUser, c.ClusterPassword = "route", "r0ute"
		env := testEnv(t)
		env.Node = node
		return servicetest.Start(t, c, env)
	}
	a := start("a", routeA, routeB)
	b := start("b", routeB, routeA)

	ncA, err := nats.Connect("nats://" + a.Addrs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ncA.Close()
	ncB, err := nats.Connect("nats://" + b.Addrs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ncB.Close()
	sub, err := ncB.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	// Interest crosses the route once the route is up; until then the
	// message has nowhere to go, so publish until one arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ncA.Publish("hello", []byte("world")); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			if string(m.Data) != "world" {
				t.Fatalf("got %q", m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message crossed the route")
		}
	}

	// JetStream is clustered: a bucket replicated on both servers, written
	// through one and read through the other, once the meta group formed.
	jsA, _ := jetstream.New(ncA)
	jsB, _ := jetstream.New(ncB)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var kv jetstream.KeyValue
	for {
		// Until the meta group has a leader a request goes unanswered, so
		// each attempt has its own deadline.
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		var err error
		kv, err = jsA.CreateKeyValue(attempt, jetstream.KeyValueConfig{Bucket: "both", Replicas: 2})
		cancelAttempt()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no replicated bucket: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	kvB, err := jsB.KeyValue(ctx, "both")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kvB.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("read through the other server: %v", err)
	}
}
