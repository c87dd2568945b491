package natsconn_test

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// startServer runs a plain NATS server on a free loopback port until the
// test ends.
func startServer(t *testing.T, user, password string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Username: user, Password: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// eventually polls cond until it holds or five seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts natsconn.Options
		want string // substring of the error; empty: valid
	}{
		{name: "nothing to connect to", opts: natsconn.Options{}, want: "OCIS_NATS_URL"},
		{name: "embedded only", opts: natsconn.Options{Embedded: natsconn.NewEmbedded()}},
		{name: "urls", opts: natsconn.Options{URLs: []string{"nats://10.0.0.1:9233", "10.0.0.2:9233"}}},
		{name: "bad scheme", opts: natsconn.Options{URLs: []string{"http://10.0.0.1:9233"}}, want: "scheme"},
		{name: "no port", opts: natsconn.Options{URLs: []string{"nats://10.0.0.1"}}, want: "host:port"},
		{name: "user without password", opts: natsconn.Options{URLs: []string{"h:1"}, User: "u"}, want: "together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestInProcessFirst checks that a connection made before the embedded
// server runs waits for it, goes in-process once it is up, and moves to a
// networked server when it goes away.
func TestInProcessFirst(t *testing.T) {
	local := startServer(t, "u", "p")
	remote := startServer(t, "u", "p")
	emb := natsconn.NewEmbedded()
	reg := prometheus.NewRegistry()
	nc, err := natsconn.Connect(natsconn.Options{
		Embedded: emb, URLs: []string{remote.ClientURL()}, User: "u", Password: "p",
		Name: "test", ReconnectWait: 20 * time.Millisecond, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Before the embedded server is set the pool's networked server is
	// the only one that answers.
	eventually(t, "connected", nc.IsConnected)
	if got := nc.ConnectedServerId(); got != remote.ID() {
		t.Fatalf("connected to %s, want the networked server %s", got, remote.ID())
	}

	release := emb.Set(local)
	// Force a reconnect: the next connection must be in-process.
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "in-process", func() bool { return nc.IsConnected() && nc.ConnectedServerId() == local.ID() })

	release()
	local.Shutdown()
	eventually(t, "failed over", func() bool { return nc.IsConnected() && nc.ConnectedServerId() == remote.ID() })
	if got := metricValue(t, reg, "ocis_nats_reconnects_total"); got < 2 {
		t.Errorf("reconnects counted %v, want at least 2", got)
	}
	if got := metricValue(t, reg, "ocis_nats_connected"); got != 1 {
		t.Errorf("connected gauge %v, want 1", got)
	}
}

// TestReconnectsForever checks that a connection whose only server is
// gone stays open, reconnecting, and recovers when a server returns.
func TestReconnectsForever(t *testing.T) {
	emb := natsconn.NewEmbedded()
	nc, err := natsconn.Connect(natsconn.Options{Embedded: emb, ReconnectWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected without a server")
	}
	// Many attempts fail meanwhile; the connection must not close.
	time.Sleep(200 * time.Millisecond)
	if nc.IsClosed() {
		t.Fatal("connection closed while no server ran")
	}
	srv := startServer(t, "", "")
	emb.Set(srv)
	eventually(t, "connected", nc.IsConnected)
	if err := nc.Publish("x", nil); err != nil {
		t.Fatal(err)
	}
}

// TestConnectsWhenEmbeddedServerComesUp checks that a connection made
// before the process's server runs connects as soon as the server is set,
// not a whole ReconnectWait later: the services of `ocis server` connect
// while the nats service is still starting.
func TestConnectsWhenEmbeddedServerComesUp(t *testing.T) {
	emb := natsconn.NewEmbedded()
	// A wait far beyond the bound below: only the wake-up can connect
	// in time.
	nc, err := natsconn.Connect(natsconn.Options{Embedded: emb, ReconnectWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected without a server")
	}
	srv := startServer(t, "", "")
	set := time.Now()
	emb.Set(srv)
	eventually(t, "connected", nc.IsConnected)
	if took := time.Since(set); took > 2*time.Second {
		t.Fatalf("connected %s after the server was set", took)
	}
}

// TestFailingServerIsNotHammered checks that the wake-up does not turn
// into a busy loop when the embedded server is set but its connections
// fail: attempts still come one ReconnectWait apart.
func TestFailingServerIsNotHammered(t *testing.T) {
	emb := natsconn.NewEmbedded()
	srv := &failingServer{}
	emb.Set(srv)
	nc, err := natsconn.Connect(natsconn.Options{Embedded: emb, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start, before := time.Now(), srv.attempts.Load()
	time.Sleep(300 * time.Millisecond)
	// 300 ms at one attempt per 50-60 ms: about five, never hundreds.
	if got, elapsed := srv.attempts.Load()-before, time.Since(start); got > int64(elapsed/(50*time.Millisecond))+2 {
		t.Fatalf("%d attempts in %s with a 50ms wait", got, elapsed)
	}
}

// failingServer is an embedded server whose every connection fails.
type failingServer struct{ attempts atomic.Int64 }

func (s *failingServer) InProcessConn() (net.Conn, error) {
	s.attempts.Add(1)
	return nil, errors.New("refused")
}

// metricValue reads one series of a counter or gauge from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// syncBuffer is a log sink the connection's handlers may write from their
// own goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDisconnectLogLevel checks that losing this process's own server,
// which the nats service withdrew (a clean stop stops it last), is said
// at info, and losing any other server at warn.
func TestDisconnectLogLevel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		embedded bool
		want     string
	}{
		{name: "own server withdrawn", embedded: true, want: `level=info conn=test msg="nats server of this process stopped`},
		{name: "networked server lost", embedded: false, want: `level=warn conn=test msg="nats disconnected, reconnecting"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, "", "")
			var logs syncBuffer
			opts := natsconn.Options{Name: "test", ReconnectWait: time.Hour, Logger: log.NewLogfmtLogger(&logs)}
			release := func() {}
			if tc.embedded {
				opts.Embedded = natsconn.NewEmbedded()
				release = opts.Embedded.Set(srv)
			} else {
				opts.URLs = []string{srv.ClientURL()}
			}
			nc, err := natsconn.Connect(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			eventually(t, "connected", nc.IsConnected)
			release()
			srv.Shutdown()
			eventually(t, "the loss logged", func() bool {
				return strings.Contains(logs.String(), "msg=\"nats") && strings.Count(logs.String(), "\n") >= 2
			})
			if got := logs.String(); !strings.Contains(got, tc.want) {
				t.Errorf("logs:\n%s\nwant a line with %s", got, tc.want)
			}
		})
	}
}

// TestCloseIsNoDisconnection checks that closing a connection on purpose,
// as every service does when it stops, is neither logged as a loss nor
// counted as one.
func TestCloseIsNoDisconnection(t *testing.T) {
	srv := startServer(t, "", "")
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	nc, err := natsconn.Connect(natsconn.Options{Name: "test", URLs: []string{srv.ClientURL()}, Logger: log.NewLogfmtLogger(&logs), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "connected", nc.IsConnected)
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.Close()
	<-closed
	if got := logs.String(); strings.Contains(got, "level=warn") || strings.Contains(got, "reconnecting") {
		t.Errorf("a Close was logged as a loss:\n%s", got)
	}
	if got := metricValue(t, reg, "ocis_nats_disconnects_total"); got != 0 {
		t.Errorf("disconnects counted %v after a Close, want 0", got)
	}
}

// A held connection makes no attempt, not even its first, until its hold
// ends; then it connects at once, whatever its ReconnectWait.
func TestHeldUntilReleased(t *testing.T) {
	emb := natsconn.NewEmbedded()
	srv := &countingServer{srv: startServer(t, "", "")}
	emb.Set(srv)
	hold := make(chan struct{})
	nc, err := natsconn.Connect(natsconn.Options{Embedded: emb, Hold: hold, ReconnectWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The first attempt is made within Connect: held, it never reached
	// the server.
	if nc.IsConnected() || srv.attempts.Load() != 0 {
		t.Fatalf("held connection: connected %v after %d attempts, want neither", nc.IsConnected(), srv.attempts.Load())
	}
	close(hold)
	eventually(t, "connected once released", nc.IsConnected)
}

// A connection closed while still held ends without ever trying.
func TestHeldClose(t *testing.T) {
	emb := natsconn.NewEmbedded()
	srv := &countingServer{srv: startServer(t, "", "")}
	emb.Set(srv)
	nc, err := natsconn.Connect(natsconn.Options{Embedded: emb, Hold: make(chan struct{}), ReconnectWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	eventually(t, "closed", nc.IsClosed)
	if got := srv.attempts.Load(); got != 0 {
		t.Fatalf("%d attempts of a connection closed while held", got)
	}
}

// countingServer is an embedded server that counts its connections.
type countingServer struct {
	srv      natsconn.InProcessServer
	attempts atomic.Int64
}

func (s *countingServer) InProcessConn() (net.Conn, error) {
	s.attempts.Add(1)
	return s.srv.InProcessConn()
}
