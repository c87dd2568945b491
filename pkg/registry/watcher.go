package registry

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// Self is this process's node name: its record is listed by Nodes but
	// never taken as remote instances, which Memory holds with their
	// in-process handlers.
	Self string
	// Grace is how long past the TTL the last known records of other
	// nodes are kept while nothing is heard from NATS; 0 means one TTL.
	Grace time.Duration
	// Logger defaults to no logging.
	Logger log.Logger
	// Registerer, when set, gets ocis_registry_nodes,
	// ocis_registry_resyncs_total and ocis_registry_stale_drops_total.
	Registerer prometheus.Registerer
}

// Node is a node's record as a watcher knows it.
type Node struct {
	NodeRecord
	// Seen is when this process last received the node's record.
	Seen time.Time `json:"seen"`
}

// Watcher keeps every node's record by watching the registry bucket:
// pushed by NATS, never polled. It starts empty; Run fills it.
type Watcher struct {
	self   string
	grace  time.Duration
	logger log.Logger

	nodesGauge prometheus.Gauge
	resyncs    prometheus.Counter
	staleDrops prometheus.Counter

	mu    sync.Mutex
	nodes map[string]*known
	// silent are nodes dropped because they went silent while their key
	// was still in the bucket: a copy of that same revision (a watch
	// started afresh) does not bring one back, a new write or a heartbeat
	// of the same runtime does.
	silent map[string]*known
	subs   map[chan struct{}]struct{}
	// reconnected is when the connection last came back (unix nanos):
	// heartbeats take up to a quarter TTL to arrive again.
	reconnected atomic.Int64

	// view is the remote instances, replaced (never changed) on every
	// change, so that a reader needs no lock.
	view atomic.Pointer[remoteView]
}

// known is one node's last record.
type known struct {
	raw  []byte
	rec  NodeRecord
	seen time.Time
	gen  uint64 // which watch delivered it last
	rev  uint64 // the revision of the key it was last delivered at
}

// remoteView is the instances of the other nodes at one moment.
type remoteView struct {
	instances []Instance
}

// NewWatcher returns a watcher that knows no node yet.
func NewWatcher(opts WatcherOptions) *Watcher {
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	f := promauto.With(opts.Registerer)
	w := &Watcher{
		self:       opts.Self,
		grace:      opts.Grace,
		logger:     opts.Logger,
		nodesGauge: f.NewGauge(prometheus.GaugeOpts{Name: "ocis_registry_nodes", Help: "Nodes this process knows from the registry, itself included."}),
		resyncs:    f.NewCounter(prometheus.CounterOpts{Name: "ocis_registry_resyncs_total", Help: "Times the registry watch was started again (reconnection, stall)."}),
		staleDrops: f.NewCounter(prometheus.CounterOpts{Name: "ocis_registry_stale_drops_total", Help: "Nodes dropped because nothing was heard of them for a TTL (TTL + grace while this process is cut off from NATS)."}),
		nodes:      map[string]*known{},
		silent:     map[string]*known{},
		subs:       map[chan struct{}]struct{}{},
	}
	w.view.Store(&remoteView{})
	return w
}

// Run watches the bucket until ctx ends, then forgets every node; one Run
// at a time. It
// starts the watch again whenever the connection comes back and whenever
// the watch goes silent for half a TTL although nodes are known (every
// live node writes each TTL/3), so a watch lost with a server is
// replaced. A node is dropped when its key is deleted or expires, and, if
// nothing is heard of it for TTL + grace (NATS unreachable), from the
// last known records too.
func (w *Watcher) Run(ctx context.Context, b *Bucket) error {
	ttl := b.TTL()
	grace := w.grace
	if grace <= 0 {
		grace = ttl
	}
	tick := min(max(ttl/10, 50*time.Millisecond), time.Second)
	// The sweeper drops stale nodes on its own, so that no NATS call of
	// the watch loop (which may wait seconds on a server that is gone)
	// can hold a dead node in the table.
	//
	// A node is live while its heartbeats arrive (core NATS, every TTL/4,
	// see Announcer.heartbeat), or its writes: one silent for a TTL is
	// dropped, even while the bucket, electing a stream leader, cannot
	// expire its key. While this process is cut off from NATS (and for
	// half a TTL after it is back) nothing can be heard, and the last
	// known records are kept for TTL + grace.
	alive, err := b.nc.Subscribe(b.aliveSubject("*"), func(m *nats.Msg) {
		w.heard(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], string(m.Data), time.Now())
	})
	if err != nil {
		return fmt.Errorf("registry heartbeats: %w", err)
	}
	defer func() { _ = alive.Unsubscribe() }()
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() {
		defer sweeper.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		status := b.Conn().StatusChanged(nats.CONNECTED)
		defer b.Conn().RemoveStatusListener(status)
		for {
			select {
			case <-ctx.Done():
				return
			case <-status:
				w.reconnected.Store(time.Now().UnixNano())
			case now := <-t.C:
				keep := ttl
				if !b.Conn().IsConnected() || now.Sub(time.Unix(0, w.reconnected.Load())) < ttl/2 {
					keep = ttl + grace
				}
				w.dropStale(now, keep)
			}
		}
	}()
	defer func() {
		sweeper.Wait()
		w.reset()
	}()
	status := b.Conn().StatusChanged(nats.CONNECTED)
	defer b.Conn().RemoveStatusListener(status)

	var gen uint64
	backoff := retry{min: 100 * time.Millisecond, max: 2 * time.Second}
	for {
		gen++
		// A fresh watch sees every reconnection so far.
		drainStatus(status)
		watch, stop, err := w.startWatch(ctx, b)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if backoff.n == 0 {
				level.Warn(w.logger).Log("msg", "registry watch not possible yet, retrying", "err", err)
			}
			if !w.pause(ctx, &backoff, status) {
				return nil
			}
			continue
		}
		if backoff.n > 0 {
			level.Info(w.logger).Log("msg", "registry watch started again")
		}
		backoff.n = 0
		w.follow(ctx, watch, status, tick, gen, ttl)
		// Stopping deletes the consumer, which waits on NATS: not here.
		go stop()
		if ctx.Err() != nil {
			return nil
		}
		w.resyncs.Inc()
	}
}

// drainStatus empties a status channel.
func drainStatus(ch <-chan nats.Status) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// startWatch watches every key.
func (w *Watcher) startWatch(ctx context.Context, b *Bucket) (jetstream.KeyWatcher, func(), error) {
	return b.watch(ctx, jetstream.AllKeys)
}

// pause waits for the next attempt at a watch; a reconnection cuts it
// short. It returns false when ctx ended.
func (w *Watcher) pause(ctx context.Context, backoff *retry, status <-chan nats.Status) bool {
	t := time.NewTimer(backoff.next())
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

// follow applies one watch's entries until it ends, goes silent, the
// connection comes back (the watch may have missed entries) or ctx ends.
func (w *Watcher) follow(ctx context.Context, watch jetstream.KeyWatcher, status <-chan nats.Status, tick time.Duration, gen uint64, ttl time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	initial := true
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-status:
			level.Info(w.logger).Log("msg", "nats reconnected; watching the registry afresh")
			return
		case e, ok := <-watch.Updates():
			if !ok {
				return
			}
			last = time.Now()
			if e == nil {
				if initial {
					// Every key there is has been delivered: nodes known
					// from before and not among them are gone.
					initial = false
					w.dropOlder(gen)
				}
				continue
			}
			w.apply(e, gen, last, ttl)
		case now := <-t.C:
			if !initial && now.Sub(last) > ttl/2 && w.count() > 0 {
				level.Info(w.logger).Log("msg", "registry watch silent although nodes are known; watching afresh", "silent_for", now.Sub(last).Round(time.Millisecond))
				return
			}
		}
	}
}

// apply records one entry of the watch; ttl is the bucket's.
func (w *Watcher) apply(e jetstream.KeyValueEntry, gen uint64, now time.Time, ttl time.Duration) {
	name := e.Key()
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(w.silent, name)
		if k, ok := w.nodes[name]; ok {
			if e.Operation() == jetstream.KeyValuePurge && now.Sub(k.seen) < ttl {
				// The key expired, yet the node was heard within a TTL:
				// its writes failed while the bucket's stream had no
				// leader, and the new leader expires every key not
				// written meanwhile at once. The node is alive and writes
				// its key again; silence drops it as for any node. (A
				// clean stop deletes the key: that drops it at once.)
				level.Info(w.logger).Log("msg", "node's registry key expired, but the node is heard; kept", "peer", name, "last_seen", k.seen.Format(time.RFC3339Nano))
				k.gen = gen
				return
			}
			delete(w.nodes, name)
			level.Info(w.logger).Log("msg", "node left the registry", "peer", name, "how", e.Operation().String())
			w.changedLocked()
		}
		return
	}
	if e.Operation() == jetstream.KeyValuePut {
		if q, ok := w.silent[name]; ok {
			if e.Revision() <= q.rev {
				// The record the node left when it went silent, seen
				// again by a fresh watch: it says nothing of the node.
				q.gen = gen
				return
			}
			delete(w.silent, name)
		}
	}
	k, ok := w.nodes[name]
	if ok && bytes.Equal(k.raw, e.Value()) {
		k.gen = gen
		if e.Revision() > k.rev {
			// A rewrite that changes nothing: the node is alive.
			k.seen, k.rev = now, e.Revision()
		}
		// The same revision again is a fresh watch delivering what the
		// bucket holds: it says nothing of the node, which may have died
		// since (a stream without a leader keeps a dead node's key).
		return
	}
	rec, valid := decodeRecord(e.Value())
	if !valid {
		level.Warn(w.logger).Log("msg", "registry entry is not a node record; ignored", "key", name)
		return
	}
	rec.Node = name
	if !ok {
		level.Info(w.logger).Log("msg", "node joined the registry", "peer", name, "instance", rec.Runtime.InstanceID)
	}
	w.nodes[name] = &known{raw: slices.Clone(e.Value()), rec: rec, seen: now, gen: gen, rev: e.Revision()}
	w.changedLocked()
}

// heard records a heartbeat of node's runtime instance id: the node is
// alive. One dropped for silence comes back at once.
func (w *Watcher) heard(node, id string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k, ok := w.nodes[node]; ok {
		if k.rec.Runtime.InstanceID == id {
			k.seen = now
		}
		return
	}
	if q, ok := w.silent[node]; ok && q.rec.Runtime.InstanceID == id {
		delete(w.silent, node)
		q.seen = now
		w.nodes[node] = q
		level.Info(w.logger).Log("msg", "node heard again", "peer", node)
		w.changedLocked()
	}
}

// dropOlder drops the nodes no watch since gen delivered.
func (w *Watcher) dropOlder(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for name, q := range w.silent {
		if q.gen < gen {
			delete(w.silent, name)
		}
	}
	for name, k := range w.nodes {
		if k.gen < gen {
			delete(w.nodes, name)
			level.Info(w.logger).Log("msg", "node left the registry while the watch was down", "peer", name)
			changed = true
		}
	}
	if changed {
		w.changedLocked()
	}
}

// dropStale drops the nodes not heard of for keep.
func (w *Watcher) dropStale(now time.Time, keep time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for name, k := range w.nodes {
		if now.Sub(k.seen) > keep {
			delete(w.nodes, name)
			w.silent[name] = k
			w.staleDrops.Inc()
			level.Warn(w.logger).Log("msg", "node dropped: nothing heard of it", "peer", name, "for", keep, "last_seen", k.seen.Format(time.RFC3339Nano))
			changed = true
		}
	}
	if changed {
		w.changedLocked()
	}
}

// reset forgets every node.
func (w *Watcher) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.silent)
	if len(w.nodes) > 0 {
		clear(w.nodes)
		w.changedLocked()
	}
}

// changedLocked publishes a new view and tells the subscribers; the
// caller holds w.mu.
func (w *Watcher) changedLocked() {
	var instances []Instance
	for name, k := range w.nodes {
		if name != w.self {
			instances = append(instances, k.rec.Instances()...)
		}
	}
	w.view.Store(&remoteView{instances: instances})
	w.nodesGauge.Set(float64(len(w.nodes)))
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // one pending notice says it all
		}
	}
}

func (w *Watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.nodes)
}

// Nodes returns every known node's record, this node's included, sorted
// by name. This node's own entry is as last written to the bucket; its
// runtime knows fresher.
func (w *Watcher) Nodes() []Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Node, 0, len(w.nodes))
	for _, k := range w.nodes {
		out = append(out, Node{NodeRecord: cloneRecord(k.rec), Seen: k.seen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Node returns one node's record.
func (w *Watcher) Node(name string) (Node, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k, ok := w.nodes[name]
	if !ok {
		return Node{}, false
	}
	return Node{NodeRecord: cloneRecord(k.rec), Seen: k.seen}, true
}

// RemoteInstances returns the running instances of the other nodes.
func (w *Watcher) RemoteInstances() []Instance {
	return slices.Clone(w.view.Load().instances)
}

// Subscribe returns a channel that receives a value after every change of
// the known records (a node joined, left or changed; not a rewrite that
// changes nothing), and the function that ends the subscription. Notices
// coalesce: a slow reader gets one for many changes and reads Nodes.
func (w *Watcher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}
}

func cloneRecord(r NodeRecord) NodeRecord {
	r.Services = slices.Clone(r.Services)
	for i := range r.Services {
		r.Services[i].Routes = slices.Clone(r.Services[i].Routes)
		r.Services[i].Public = slices.Clone(r.Services[i].Public)
	}
	return r
}
