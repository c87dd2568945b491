package events

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// testServer is one embedded NATS server with JetStream, its store in the
// test's temp dir. A server of its own per test (about 30 ms to start)
// lets every test use the real stream name and subjects.
type testServer struct {
	mu   sync.Mutex
	opts *server.Options
	srv  *server.Server
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{opts: &server.Options{
		ServerName: "events-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	}}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// start runs the server with its options, pinning the port a random port
// resolved to so that a restart keeps it.
func (s *testServer) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := server.NewServer(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats server not ready")
	}
	o := s.opts.Clone()
	o.Port = srv.Addr().(*net.TCPAddr).Port
	s.opts, s.srv = o, srv
}

// stop shuts the server down and waits until it is.
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// restart starts the server again on the same port and store.
func (s *testServer) restart(t *testing.T) {
	t.Helper()
	s.start(t)
}

func (s *testServer) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port)
}

// connect opens a client of s that reconnects fast; closed with the test.
func connect(t testing.TB, s *testServer, who string) *nats.Conn {
	t.Helper()
	nc, err := natsconn.Connect(natsconn.Options{
		URLs: []string{s.url()}, Name: who, ReconnectWait: 50 * time.Millisecond, PingInterval: 500 * time.Millisecond,
		Logger: testLogger(t, who),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testLogger logs to the test when -v is given, else nowhere; lines
// logged after the test ended are dropped.
func testLogger(t testing.TB, who string) log.Logger {
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
	t    testing.TB
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

// runPublisher runs p until the test ends (or stop is called), failing
// the test if Run does not return within its drain timeout and a margin.
func runPublisher(t *testing.T, p *Publisher) (stop func()) {
	t.Helper()
	return runActor(t, "publisher", p.Run, p.opts.DrainTimeout+5*time.Second)
}

// runConsumer runs c until the test ends (or stop is called).
func runConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	return runActor(t, "consumer "+c.opts.Name, c.Run, 10*time.Second)
}

func runActor(t *testing.T, what string, run func(context.Context) error, bound time.Duration) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(bound):
				t.Errorf("%s did not stop within %s", what, bound)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newPublisher makes a publisher on nc with metrics in reg.
func newPublisher(t *testing.T, nc *nats.Conn, reg prometheus.Registerer, opts PublisherOptions) *Publisher {
	t.Helper()
	opts.Registerer = reg
	if opts.Logger == nil {
		opts.Logger = testLogger(t, "publisher")
	}
	p, err := NewPublisher(nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newConsumer makes a consumer on nc with metrics in reg and fast retries.
func newConsumer(t *testing.T, nc *nats.Conn, reg prometheus.Registerer, opts ConsumerOptions) *Consumer {
	t.Helper()
	opts.Registerer = reg
	if opts.Logger == nil {
		opts.Logger = testLogger(t, "consumer "+opts.Name)
	}
	if opts.RetryDelays == nil {
		opts.RetryDelays = []time.Duration{20 * time.Millisecond}
	}
	if opts.LagInterval == 0 {
		opts.LagInterval = 50 * time.Millisecond
	}
	c, err := NewConsumer(nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder is an idempotent handler's store: it applies each event id
// once, in the order first seen, and counts every delivery.
type recorder struct {
	mu         sync.Mutex
	applied    []Event
	seen       map[string]bool
	deliveries map[string]int
	subjects   map[string]string // id → subject
	// fail, when set, is asked before applying; a non-nil error is
	// returned instead.
	fail func(ev Event, attempt int) error
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]bool{}, deliveries: map[string]int{}, subjects: map[string]string{}}
}

func (r *recorder) handle(ctx context.Context, ev Event) error {
	r.mu.Lock()
	r.deliveries[ev.ID]++
	r.subjects[ev.ID] = ev.Subject
	attempt := r.deliveries[ev.ID]
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(ev, attempt); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[ev.ID] {
		r.seen[ev.ID] = true
		r.applied = append(r.applied, ev)
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.applied...)
}

func (r *recorder) deliveriesOf(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries[id]
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric reads one counter or gauge of reg by name and labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// lint fails the test when reg's metrics break Prometheus conventions
// (what promtool check metrics checks).
func lint(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// event is a test event of type typ about subject.
func event(t *testing.T, typ, subject string, payload any) Event {
	t.Helper()
	ev, err := New(typ, "alice", subject, payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// idsOf lists the ids of the events about subject that were delivered.
func (r *recorder) idsOf(subject string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, s := range r.subjects {
		if s == subject {
			ids = append(ids, id)
		}
	}
	return ids
}
