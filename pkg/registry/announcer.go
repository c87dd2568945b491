package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// AnnounceOptions are the optional parts of an Announcer.
type AnnounceOptions struct {
	// Logger defaults to no logging.
	Logger log.Logger
	// Registerer, when set, gets ocis_registry_writes_total and
	// ocis_registry_write_errors_total.
	Registerer prometheus.Registerer
}

// Announcer keeps one node's record in the registry bucket: written at
// once on every change, rewritten every TTL/3 (with jitter) so that it
// does not expire, and deleted on Close. Every write is a compare-and-set
// on the revision it last wrote, so two processes can never both believe
// they hold one node name.
type Announcer struct {
	b      *Bucket
	key    string
	id     string
	logger log.Logger
	writes prometheus.Counter
	errs   prometheus.Counter

	mu      sync.Mutex
	rec     NodeRecord
	rev     uint64 // the revision this announcer last wrote; 0 once it lost the key
	lost    error  // set while another runtime holds the name
	failing bool   // whether the last write failed, to log a streak once

	dirty chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Announce claims rec.Node in the bucket and keeps rec there until Close.
// The claim is refused with a *NodeTakenError (errors.Is ErrNodeTaken)
// when another live runtime holds the name: a key with another instance
// ID that its holder rewrites while Announce watches it. A key left by a
// runtime that died is waited out (at most one TTL) and then taken, so a
// node restarted right after a crash comes back by itself. Announce
// retries while JetStream does not answer, until ctx ends.
func Announce(ctx context.Context, b *Bucket, rec NodeRecord, opts AnnounceOptions) (*Announcer, error) {
	if err := ValidateNodeName(rec.Node); err != nil {
		return nil, err
	}
	if rec.Runtime.InstanceID == "" {
		return nil, errors.New("announce: the record has no runtime instance id (NewInstanceID)")
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	f := promauto.With(opts.Registerer)
	a := &Announcer{
		b:      b,
		key:    rec.Node,
		id:     rec.Runtime.InstanceID,
		logger: log.With(opts.Logger, "node", rec.Node),
		writes: f.NewCounter(prometheus.CounterOpts{Name: "ocis_registry_writes_total", Help: "Writes of this node's record to the registry bucket."}),
		errs:   f.NewCounter(prometheus.CounterOpts{Name: "ocis_registry_write_errors_total", Help: "Writes of this node's record that failed."}),
		rec:    rec,
		dirty:  make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := a.claim(ctx); err != nil {
		return nil, err
	}
	level.Info(a.logger).Log("msg", "node announced in the registry", "instance", a.id, "ttl", b.TTL())
	go a.loop()
	go a.heartbeat()
	return a, nil
}

// Publish replaces the node's record and writes it at once, without
// waiting for NATS: the write happens in the background, and a newer
// record published meanwhile supersedes it. The runtime calls it with the
// node's full current record on every state change. The record's node
// name and instance id are the announcer's, whatever rec says. After
// Close it writes nothing: a node that left stays gone.
func (a *Announcer) Publish(rec NodeRecord) {
	a.mu.Lock()
	rec.Node, rec.Runtime.InstanceID = a.key, a.id
	a.rec = rec
	a.mu.Unlock()
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// Err is nil while the announcer holds its node name, and a
// *NodeTakenError after another runtime took it (this node was cut off
// for longer than the TTL and a runtime of the same name started
// meanwhile). The announcer takes the name back once that one's key goes.
func (a *Announcer) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lost
}

// Close stops the rewrites and deletes the node's key, unless another
// runtime holds it by now, so that watchers drop the node at once instead
// of after its TTL.
func (a *Announcer) Close(ctx context.Context) error {
	a.once.Do(func() { close(a.stop) })
	<-a.done
	a.mu.Lock()
	rev := a.rev
	a.mu.Unlock()
	if rev == 0 {
		return nil
	}
	err := a.b.kv.Delete(ctx, a.key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A write whose answer was lost moved the revision; delete only
		// if the key is still this runtime's.
		e, gerr := a.b.kv.Get(ctx, a.key)
		if gerr != nil {
			return nil
		}
		if holder, ok := decodeRecord(e.Value()); !ok || holder.Runtime.InstanceID != a.id {
			return nil
		}
		err = a.b.kv.Delete(ctx, a.key, jetstream.LastRevision(e.Revision()))
	}
	if err != nil {
		return fmt.Errorf("delete node %s from the registry: %w", a.key, err)
	}
	level.Info(a.logger).Log("msg", "node removed from the registry")
	return nil
}

// errRetry says that an attempt failed in a way worth retrying after a
// pause (NATS did not answer).
var errRetry = errors.New("retry")

// claim creates the node's key, or waits out a key left by a runtime that
// is gone, or refuses when its holder is alive.
func (a *Announcer) claim(ctx context.Context) error {
	backoff := retry{min: 50 * time.Millisecond, max: time.Second}
	for {
		data := a.encode()
		wctx, cancel := context.WithTimeout(ctx, a.writeTimeout())
		rev, err := a.b.kv.Create(wctx, a.key, data)
		cancel()
		if err == nil {
			a.setRev(rev)
			return nil
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			mine, werr := a.awaitHolder(ctx)
			switch {
			case werr == nil && mine:
				return nil
			case werr == nil:
				continue // the key went away: claim it
			case !errors.Is(werr, errRetry):
				return werr
			}
			err = werr
		}
		if ctx.Err() != nil {
			return fmt.Errorf("announce node %s: %w (last error: %w)", a.key, ctx.Err(), err)
		}
		level.Debug(a.logger).Log("msg", "registry claim failed, retrying", "err", err)
		if err := backoff.wait(ctx); err != nil {
			return fmt.Errorf("announce node %s: %w", a.key, err)
		}
	}
}

// awaitHolder watches the key another record holds. It returns mine =
// true when the key turned out to hold this runtime's own instance id and
// is now claimed again; a *NodeTakenError when the holder shows it is
// alive by rewriting the key; mine = false with no error when the key went
// away; errRetry when NATS did not answer.
func (a *Announcer) awaitHolder(ctx context.Context) (mine bool, err error) {
	w, stop, err := a.b.watch(ctx, a.key)
	if err != nil {
		return false, errRetry
	}
	defer stop()
	// A live holder rewrites within TTL/3; a dead one's key expires
	// within one TTL. Either shows within TTL plus a margin.
	deadline := time.NewTimer(a.b.TTL() + time.Second)
	defer deadline.Stop()
	var holder *NodeRecord
	var holderRev uint64
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("announce node %s: %w", a.key, ctx.Err())
		case <-deadline.C:
			if holder == nil {
				return false, nil
			}
			return false, &NodeTakenError{Node: a.key, Holder: holder.Runtime}
		case e, ok := <-w.Updates():
			if !ok {
				return false, nil
			}
			if e == nil {
				if holder == nil {
					return false, nil // nothing there any more
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				return false, nil // deleted or expired: claim it
			}
			rec, _ := decodeRecord(e.Value())
			if rec.Runtime.InstanceID == a.id {
				// This process's own earlier claim: take it over.
				wctx, cancel := context.WithTimeout(ctx, a.writeTimeout())
				rev, err := a.b.kv.Update(wctx, a.key, a.encode(), e.Revision())
				cancel()
				if err != nil {
					return false, nil
				}
				a.setRev(rev)
				return true, nil
			}
			if holder != nil && e.Revision() > holderRev {
				return false, &NodeTakenError{Node: a.key, Holder: rec.Runtime}
			}
			holder, holderRev = &rec, e.Revision()
			level.Info(a.logger).Log("msg", "node name held by another runtime; waiting to see whether it is alive",
				"holder_instance", rec.Runtime.InstanceID, "holder_control_addr", rec.Runtime.ControlAddr, "wait", a.b.TTL()+time.Second)
		}
	}
}

// loop rewrites the record on every change, every TTL/3 and on every
// reconnection, until Close.
func (a *Announcer) loop() {
	defer close(a.done)
	status := a.b.Conn().StatusChanged(nats.CONNECTED)
	defer a.b.Conn().RemoveStatusListener(status)
	timer := time.NewTimer(a.interval())
	defer timer.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-a.dirty:
		case <-status:
		case <-timer.C:
			ctx, cancel := context.WithTimeout(context.Background(), a.writeTimeout())
			a.b.scaleUp(ctx)
			cancel()
		}
		a.write()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(a.interval())
	}
}

// heartbeat says on core NATS that this runtime is alive, every TTL/4,
// whatever becomes of the writes: watchers drop a node that has gone
// silent for a TTL even while the bucket cannot expire its key (its stream
// electing a leader). The payload is the instance id.
func (a *Announcer) heartbeat() {
	subject := a.b.aliveSubject(a.key)
	t := time.NewTicker(max(a.b.TTL()/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		_ = a.b.nc.Publish(subject, []byte(a.id))
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// write puts the current record over the revision last written; when
// that is no longer the key's revision it finds out why.
func (a *Announcer) write() {
	ctx, cancel := context.WithTimeout(context.Background(), a.writeTimeout())
	defer cancel()
	data := a.encode()
	a.mu.Lock()
	rev := a.rev
	a.mu.Unlock()
	var err error
	if rev == 0 {
		rev, err = a.b.kv.Create(ctx, a.key, data)
	} else {
		rev, err = a.b.kv.Update(ctx, a.key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = a.recover(ctx, data)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs.Inc()
		if !a.failing && !errors.Is(err, ErrNodeTaken) {
			level.Warn(a.logger).Log("msg", "registry write failed; retrying until it works", "err", err)
		}
		a.failing = true
		return
	}
	a.writes.Inc()
	if a.failing {
		level.Info(a.logger).Log("msg", "registry writes work again")
	}
	a.failing = false
	a.rev = rev
	if a.lost != nil {
		level.Info(a.logger).Log("msg", "node name taken back")
	}
	a.lost = nil
}

// recover handles a key whose revision is not the one last written: it
// expired or was deleted (re-create it), a write whose answer was lost
// moved it (write over the new revision), or another runtime took the
// name (leave it, and say so).
func (a *Announcer) recover(ctx context.Context, data []byte) (uint64, error) {
	e, err := a.b.kv.Get(ctx, a.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		rev, err := a.b.kv.Create(ctx, a.key, data)
		if err == nil {
			level.Warn(a.logger).Log("msg", "registry entry had expired or was deleted; written again")
		}
		return rev, err
	}
	if err != nil {
		return 0, err
	}
	holder, _ := decodeRecord(e.Value())
	if holder.Runtime.InstanceID == a.id {
		return a.b.kv.Update(ctx, a.key, data, e.Revision())
	}
	taken := &NodeTakenError{Node: a.key, Holder: holder.Runtime}
	a.mu.Lock()
	if a.lost == nil {
		level.Error(a.logger).Log("msg", "another runtime took this node's name while it was cut off; this node is out of the registry until that one's key goes", "holder_instance", holder.Runtime.InstanceID, "holder_control_addr", holder.Runtime.ControlAddr)
	}
	a.lost, a.rev = taken, 0
	a.mu.Unlock()
	return 0, taken
}

func (a *Announcer) setRev(rev uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rev = rev
}

// encode returns the current record as stored.
func (a *Announcer) encode() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	data, _ := json.Marshal(a.rec) // plain data: never fails
	return data
}

// interval is the wait before the next rewrite: TTL/3 ± 10%, so that the
// nodes of a cluster started together do not write in lockstep.
func (a *Announcer) interval() time.Duration {
	third := a.b.TTL() / 3
	return third - third/10 + time.Duration(rand.Int64N(int64(third/5)+1))
}

// writeTimeout bounds one write: a write that takes longer than a third
// of the TTL is as good as failed.
func (a *Announcer) writeTimeout() time.Duration {
	return min(a.b.TTL()/3, 5*time.Second)
}

// decodeRecord parses a stored record; ok is false for one that is not.
func decodeRecord(data []byte) (NodeRecord, bool) {
	var rec NodeRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return NodeRecord{}, false
	}
	return rec, true
}
