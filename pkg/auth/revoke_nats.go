package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RevocationsBucket is the JetStream key-value bucket through which the
// nodes of one system share revocations: one key per account, holding the
// strongest revocation any node made of it. It has no TTL: a deleted
// account stays deleted.
const RevocationsBucket = "ocis-revocations"

// ShareOptions configure ShareRevocations.
type ShareOptions struct {
	// Bucket defaults to RevocationsBucket; tests use their own.
	Bucket string
	// Logger defaults to no logging.
	Logger log.Logger
	// Merged, when set, is called after revocations from other nodes
	// changed the list; the runtime saves the list to its file there, so
	// that the other processes of the machine learn them too.
	Merged func()
	// Resync is how often the bucket is read whole again, besides after
	// every reconnection; 0 means one minute.
	Resync time.Duration
}

// ShareRevocations keeps r and the revocations bucket in step until ctx
// ends: every revocation r learns (from this process's users service, from
// its file) is written to the bucket, and every one another node writes is
// merged into r within moments, so a deletion made on one node is refused
// by the services of every node. Merging is monotone (the highest
// generation wins, a deletion stays), so the order in which writes and
// watches meet does not matter and a node that was away catches up by
// reading the bucket. It never gives up while ctx lasts: NATS unreachable
// means retrying.
func ShareRevocations(ctx context.Context, nc *nats.Conn, r *Revocations, opts ShareOptions) error {
	if opts.Bucket == "" {
		opts.Bucket = RevocationsBucket
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	s := &sharer{r: r, opts: opts, logger: log.With(opts.Logger, "bucket", opts.Bucket),
		mirror: map[string]Revocation{}, pending: map[string]Revocation{}, dirty: make(chan struct{}, 1)}
	kv, err := s.open(ctx, js)
	if err != nil {
		return err
	}
	cancel := r.Subscribe(s.enqueue)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.writeLoop(ctx, kv) })
	s.watchLoop(ctx, nc, kv)
	wg.Wait()
	return nil
}

// sharer is one ShareRevocations at work.
type sharer struct {
	r      *Revocations
	opts   ShareOptions
	logger log.Logger

	mu sync.Mutex
	// mirror is what the bucket is known to hold, per subject.
	mirror map[string]Revocation
	// pending are local revocations not yet known to be in the bucket.
	pending map[string]Revocation
	dirty   chan struct{}
}

// open binds to the bucket, creating it with as many replicas as the
// cluster allows (three, else two, else one), retrying until JetStream
// answers or ctx ends.
func (s *sharer) open(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	wait := 50 * time.Millisecond
	for {
		kv, err := s.try(ctx, js)
		if err == nil {
			return kv, nil
		}
		level.Debug(s.logger).Log("msg", "revocations bucket not reachable yet, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (s *sharer) try(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, s.opts.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	for replicas := 3; replicas >= 1; replicas-- {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.opts.Bucket,
			Description: "revoked tokens of ocis accounts, shared by every node",
			History:     1,
			Replicas:    replicas,
		})
		if err == nil || errors.Is(err, jetstream.ErrBucketExists) {
			if err != nil {
				return js.KeyValue(ctx, s.opts.Bucket)
			}
			level.Info(s.logger).Log("msg", "revocations bucket created", "replicas", replicas)
			return kv, nil
		}
	}
	return nil, err
}

// enqueue is the subscriber of r: it must not block.
func (s *sharer) enqueue(rev Revocation) {
	s.mu.Lock()
	if !covers(s.mirror[rev.Subject], rev) {
		s.pending[rev.Subject] = merge(s.pending[rev.Subject], rev)
	}
	s.mu.Unlock()
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// writeLoop writes pending revocations to the bucket, retrying failed
// writes, until ctx ends.
func (s *sharer) writeLoop(ctx context.Context, kv jetstream.KeyValue) {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		case <-retry.C:
		}
		s.mu.Lock()
		batch := make([]Revocation, 0, len(s.pending))
		for _, rev := range s.pending {
			batch = append(batch, rev)
		}
		s.mu.Unlock()
		failed := false
		for _, rev := range batch {
			stored, err := s.write(ctx, kv, rev)
			if err != nil {
				failed = true
				level.Warn(s.logger).Log("msg", "write revocation to the bucket, will retry", "sub", rev.Subject, "err", err)
				continue
			}
			s.mu.Lock()
			s.mirror[rev.Subject] = merge(s.mirror[rev.Subject], stored)
			if covers(s.mirror[rev.Subject], s.pending[rev.Subject]) {
				delete(s.pending, rev.Subject)
			}
			s.mu.Unlock()
		}
		if failed {
			retry.Reset(time.Second)
		}
	}
}

// write merges rev into the bucket's entry for its subject with a
// compare-and-set, so that two nodes writing at once both count.
func (s *sharer) write(ctx context.Context, kv jetstream.KeyValue, rev Revocation) (Revocation, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := revocationKey(rev.Subject)
	for {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			data, _ := json.Marshal(rev)
			if _, err := kv.Create(ctx, key, data); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
				return rev, err
			}
			continue // written meanwhile: merge with it
		case err != nil:
			return Revocation{}, err
		}
		var old Revocation
		if json.Unmarshal(e.Value(), &old) != nil || old.Subject != rev.Subject {
			old = Revocation{Subject: rev.Subject}
		}
		if covers(old, rev) {
			return old, nil
		}
		merged := merge(old, rev)
		data, _ := json.Marshal(merged)
		if _, err := kv.Update(ctx, key, data, e.Revision()); err == nil {
			return merged, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return Revocation{}, err
		}
	}
}

// watchLoop follows the bucket, merging what other nodes write, and reads
// it whole again after every reconnection and every Resync.
func (s *sharer) watchLoop(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue) {
	status := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(status)
	for ctx.Err() == nil {
		s.watchOnce(ctx, kv, status)
	}
}

func (s *sharer) watchOnce(ctx context.Context, kv jetstream.KeyValue, status <-chan nats.Status) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		level.Debug(s.logger).Log("msg", "watch revocations, retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-status:
		case <-time.After(time.Second):
		}
		return
	}
	defer func() { _ = w.Stop() }()
	resync := time.NewTimer(s.opts.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-status:
			return
		case <-resync.C:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			s.merge(e.Value())
		}
	}
}

// merge takes one entry of the bucket into the mirror and the list.
func (s *sharer) merge(data []byte) {
	var rev Revocation
	if err := json.Unmarshal(data, &rev); err != nil || rev.Subject == "" {
		level.Warn(s.logger).Log("msg", "revocations bucket holds an entry that is not a revocation", "err", err)
		return
	}
	s.mu.Lock()
	s.mirror[rev.Subject] = merge(s.mirror[rev.Subject], rev)
	s.mu.Unlock()
	if s.r.covers(rev) {
		return
	}
	s.r.Revoke(rev)
	level.Info(s.logger).Log("msg", "revocation from another node", "sub", rev.Subject, "deleted", rev.Deleted)
	if s.opts.Merged != nil {
		s.opts.Merged()
	}
}

// covers reports whether have withdraws at least what rev does.
func covers(have, rev Revocation) bool {
	if rev.Subject == "" {
		return true
	}
	return have.Subject == rev.Subject && (have.Deleted || (!rev.Deleted && have.MinGen >= rev.MinGen))
}

// merge is the strongest of a and b (of one subject; a may be zero).
func merge(a, b Revocation) Revocation {
	if a.Subject == "" {
		return b
	}
	a.Deleted = a.Deleted || b.Deleted
	a.MinGen = max(a.MinGen, b.MinGen)
	return a
}

// covers reports whether the list already withdraws what rev does.
func (r *Revocations) covers(rev Revocation) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return covers(r.bySub[rev.Subject], rev)
}

// revocationKey is a subject as a bucket key: key names allow fewer
// characters than subjects may hold, so it is base64url-encoded.
func revocationKey(subject string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(subject))
}
