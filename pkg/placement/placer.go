package placement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

// DefaultLookupTimeout bounds the bucket calls a request may make (a Get
// on a miss, a Create at a first write): past it the request is 503.
const DefaultLookupTimeout = 2 * time.Second

// Options configure a Placer.
type Options struct {
	// Store says which bucket to follow.
	Store StoreConfig
	// LookupTimeout defaults to DefaultLookupTimeout.
	LookupTimeout time.Duration
	// Logger defaults to no logging.
	Logger log.Logger
	// Registerer, when set, gets ocis_placement_known,
	// ocis_placement_created_total and ocis_placement_lookups_total.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
}

// Placer narrows the instances of the placed service (storage) to the one
// that may serve a user's request. It keeps a copy of the bucket that Run
// follows by watching it (pushed, never polled); a user missing from the
// copy is looked up directly in the bucket before being taken as never
// placed, so a placement another proxy made a moment ago is never missed.
type Placer struct {
	static  bool
	timeout time.Duration
	logger  log.Logger
	now     func() time.Time
	cfg     StoreConfig

	store  atomic.Pointer[Store]
	opened chan struct{} // closed once store is set

	mu    sync.RWMutex
	known map[string]entry

	knownGauge prometheus.Gauge
	created    prometheus.Counter
	lookups    *prometheus.CounterVec
}

// entry is one user's placement as the copy holds it.
type entry struct {
	node string
	gen  uint64 // which watch delivered it last; 0: a direct lookup
}

// NewPlacer returns a placer that knows no placement yet; Run follows the
// bucket. Until the bucket answers, users it does not know get ErrUnknown.
func NewPlacer(opts Options) *Placer { return newPlacer(opts) }

// Static returns the placer of a process with no NATS at all (a single
// node without the nats service, a proxy alone with a static registry):
// nothing can be recorded, so it lets requests through only while there
// is exactly one storage node, where no choice is needed, and answers
// ErrNotRecorded when there are several.
func Static() *Placer {
	p := newPlacer(Options{})
	p.static = true
	return p
}

func newPlacer(opts Options) *Placer {
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = DefaultLookupTimeout
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := promauto.With(opts.Registerer)
	return &Placer{
		timeout:    opts.LookupTimeout,
		logger:     opts.Logger,
		now:        opts.Now,
		cfg:        opts.Store,
		known:      map[string]entry{},
		opened:     make(chan struct{}),
		knownGauge: f.NewGauge(prometheus.GaugeOpts{Name: "ocis_placement_known", Help: "Users whose storage placement this process knows."}),
		created:    f.NewCounter(prometheus.CounterOpts{Name: "ocis_placement_created_total", Help: "Users placed by this process at their first write."}),
		lookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ocis_placement_lookups_total",
			Help: "Direct bucket lookups for users missing from the watched copy, by outcome (found, absent, error).",
		}, []string{"outcome"}),
	}
}

// Request is what Place needs to know of one request.
type Request struct {
	// User is the account's immutable id (the token's subject).
	User string
	// Username is recorded beside a new placement, for operators.
	Username string
	// Write is true for a request that may create a file (PUT): only
	// those place a user who has no placement.
	Write bool
}

// Place returns the instances, among those of the placed service that run
// now, that may serve req: the ones on the user's node. A user without a
// placement reads from any instance (they have no files: a 404 or an
// empty listing is the truth), and is placed by their first write. Every
// error is 503 unavailable on the wire. An empty result with no error
// means no instance runs at all.
func (p *Placer) Place(ctx context.Context, req Request, instances []registry.Instance) ([]registry.Instance, error) {
	if p.static {
		if severalNodes(instances) {
			return nil, ErrNotRecorded
		}
		return instances, nil
	}
	if node, ok := p.lookup(req.User); ok {
		return on(instances, node)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	s := p.openStore(ctx)
	if s == nil {
		return nil, fmt.Errorf("%w: the placement bucket is not open yet", ErrUnknown)
	}
	rec, found, err := s.Get(ctx, req.User)
	switch {
	case errors.Is(err, ErrInvalidKey):
		// A signed token with such a subject cannot come from the users
		// service; there is nothing to route it to.
		return nil, fmt.Errorf("%w: %w", ErrUnknown, err)
	case err != nil:
		p.lookups.WithLabelValues("error").Inc()
		level.Warn(p.logger).Log("msg", "placement lookup failed", "user", req.User, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrUnknown, err)
	case found:
		p.lookups.WithLabelValues("found").Inc()
		p.remember(req.User, rec.Node, 0)
		return on(instances, rec.Node)
	}
	p.lookups.WithLabelValues("absent").Inc()
	if !req.Write {
		return instances, nil
	}
	node := Choose(req.User, nodesOf(instances))
	if node == "" {
		return nil, nil
	}
	rec, created, err := s.Create(ctx, req.User, Record{Node: node, Username: req.Username, At: p.now().UTC(), By: "first write"})
	if err != nil {
		level.Warn(p.logger).Log("msg", "placing user failed", "user", req.User, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	if created {
		p.created.Inc()
		level.Info(p.logger).Log("msg", "user placed", "user", req.User, "username", req.Username, "node", node)
	}
	p.remember(req.User, rec.Node, 0)
	return on(instances, rec.Node)
}

// openStore returns the bucket, waiting for Run to open it until ctx
// ends: a request in the first moments of a start (the local nats server
// still starting) waits for it rather than fail.
func (p *Placer) openStore(ctx context.Context) *Store {
	if s := p.store.Load(); s != nil {
		return s
	}
	select {
	case <-p.opened:
		return p.store.Load()
	case <-ctx.Done():
		return nil
	}
}

// lookup returns the node of user in the copy.
func (p *Placer) lookup(user string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.known[user]
	return e.node, ok
}

// remember records user's node in the copy. A direct lookup (gen 0)
// never overrides what a watch delivered: the watch is the newer word.
func (p *Placer) remember(user, node string, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.known[user]; ok && gen == 0 {
		if old.node != node {
			return
		}
		gen = old.gen
	}
	p.known[user] = entry{node: node, gen: gen}
	p.knownGauge.Set(float64(len(p.known)))
}

// forget drops user from the copy.
func (p *Placer) forget(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.known, user)
	p.knownGauge.Set(float64(len(p.known)))
}

// dropOlder drops the users no watch since gen delivered: their
// placements were deleted while the watch was down.
func (p *Placer) dropOlder(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for user, e := range p.known {
		if e.gen < gen {
			delete(p.known, user)
		}
	}
	p.knownGauge.Set(float64(len(p.known)))
}

// setStore hands the opened bucket to requests, those waiting included.
func (p *Placer) setStore(s *Store) {
	if p.store.Swap(s) == nil {
		close(p.opened)
	}
}

// Opened reports whether Run has opened the bucket: before, users the
// copy does not know get ErrUnknown.
func (p *Placer) Opened() bool { return p.store.Load() != nil }

// Node returns user's node as the copy knows it.
func (p *Placer) Node(user string) (string, bool) { return p.lookup(user) }

// on returns the instances on node, or ErrInstanceDown naming it.
func on(instances []registry.Instance, node string) ([]registry.Instance, error) {
	var out []registry.Instance
	for _, in := range instances {
		if in.Node == node {
			out = append(out, in)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the user's files are on node %s", ErrInstanceDown, node)
	}
	return out, nil
}

// severalNodes tells whether instances run on more than one node, without
// the allocation of nodesOf: the static placer asks it on every request.
func severalNodes(instances []registry.Instance) bool {
	for _, in := range instances[min(1, len(instances)):] {
		if in.Node != instances[0].Node {
			return true
		}
	}
	return false
}

// nodesOf lists the distinct nodes of instances, sorted.
func nodesOf(instances []registry.Instance) []string {
	nodes := make([]string, 0, len(instances))
	for _, in := range instances {
		if !slices.Contains(nodes, in.Node) {
			nodes = append(nodes, in.Node)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// Run opens the bucket on nc (retrying until JetStream answers) and
// follows it until ctx ends: it starts the watch afresh whenever the
// connection comes back, and while NATS is unreachable keeps every
// placement it knows, so those users go on being served. A static placer
// returns at once.
func (p *Placer) Run(ctx context.Context, nc *nats.Conn) error {
	if p.static {
		return nil
	}
	s, err := OpenStore(ctx, nc, StoreConfig{Name: p.cfg.Name, Replicas: p.cfg.Replicas, Logger: p.logger})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	p.setStore(s)
	status := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(status)
	var gen uint64
	wait := 100 * time.Millisecond
	for {
		gen++
		drain(status)
		watch, stop, err := s.watch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			level.Warn(p.logger).Log("msg", "placement watch not possible yet, retrying", "err", err)
			if !pause(ctx, wait, status) {
				return nil
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		p.follow(ctx, s, watch, status, gen)
		// Stopping deletes the consumer, which waits on NATS: not here.
		go stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// follow applies one watch's entries until it ends, the connection comes
// back (the watch may have missed entries) or ctx ends.
func (p *Placer) follow(ctx context.Context, s *Store, watch jetstream.KeyWatcher, status <-chan nats.Status, gen uint64) {
	scale := time.NewTicker(scaleEvery)
	defer scale.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-status:
			level.Info(p.logger).Log("msg", "nats reconnected; watching the placements afresh")
			return
		case <-scale.C:
			go s.scaleUp(ctx)
		case e, ok := <-watch.Updates():
			if !ok {
				return
			}
			if e == nil {
				// Every placement there is has been delivered.
				p.dropOlder(gen)
				continue
			}
			p.apply(e, gen)
		}
	}
}

// apply records one entry of the watch.
func (p *Placer) apply(e jetstream.KeyValueEntry, gen uint64) {
	user := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		p.forget(user)
		level.Info(p.logger).Log("msg", "placement removed", "user", user)
		return
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		level.Warn(p.logger).Log("msg", "placement entry ignored", "user", user, "err", err)
		return
	}
	if old, ok := p.lookup(user); ok && old != rec.Node {
		level.Info(p.logger).Log("msg", "user moved", "user", user, "from", old, "to", rec.Node)
	}
	p.mu.Lock()
	p.known[user] = entry{node: rec.Node, gen: gen}
	p.knownGauge.Set(float64(len(p.known)))
	p.mu.Unlock()
}

func drain(ch <-chan nats.Status) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// pause waits d; a reconnection cuts it short. It returns false when ctx
// ended.
func pause(ctx context.Context, d time.Duration, status <-chan nats.Status) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-status:
		return true
	}
}
