package placement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// BucketName is the JetStream key-value bucket of the placements.
const BucketName = "ocis-placement"

const (
	// maxReplicas is the most copies of the bucket worth keeping: three
	// survive the loss of any one server.
	maxReplicas = 3
	// scaleEvery is how often a bucket with fewer replicas than it could
	// have asks for one more, as servers join the cluster.
	scaleEvery = time.Minute
	// history keeps a user's last placements, so that an operator can see
	// where a user was before a move (nats kv history).
	history = 5
)

// StoreConfig says which bucket holds the placements and how.
type StoreConfig struct {
	// Name defaults to BucketName; tests use their own.
	Name string
	// Replicas is the number of copies; 0 means min(3, cluster size),
	// found by asking for 3 and settling for fewer, then asking for more
	// every minute while the store is followed (Placer.Run).
	Replicas int
	// Logger defaults to no logging.
	Logger log.Logger
}

// Store is the placement bucket, opened on one connection. Placements
// have no TTL: they last until an operator changes them.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	name   string
	auto   bool
	logger log.Logger

	mu        sync.Mutex
	replicas  int
	lastScale time.Time
}

// OpenStore binds to the placement bucket, creating it when it does not
// exist. JetStream may not answer yet (a cluster without a quorum, the
// local nats service still starting): OpenStore then retries until it
// does or ctx ends.
func OpenStore(ctx context.Context, nc *nats.Conn, cfg StoreConfig) (*Store, error) {
	if cfg.Name == "" {
		cfg.Name = BucketName
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("placement: %w", err)
	}
	s := &Store{nc: nc, js: js, name: cfg.Name, auto: cfg.Replicas == 0, logger: log.With(cfg.Logger, "bucket", cfg.Name)}
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := s.open(ctx, cfg)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrInvalidBucketName) {
			return nil, fmt.Errorf("placement bucket %s: %w", cfg.Name, err)
		}
		// A stop during the wait cancels ctx: that is no news.
		if attempt == 0 && ctx.Err() == nil {
			level.Warn(s.logger).Log("msg", "placement bucket not reachable yet, retrying", "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("open placement bucket %s: %w (last error: %w)", cfg.Name, ctx.Err(), err)
		case <-t.C:
		}
		// At most a second apart: requests of users placed nowhere
		// wait for the bucket at a start.
		wait = min(2*wait, time.Second)
	}
	level.Info(s.logger).Log("msg", "placement bucket open", "replicas", s.Replicas())
	return s, nil
}

// open binds to or creates the bucket once.
func (s *Store) open(ctx context.Context, cfg StoreConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := s.js.KeyValue(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.create(ctx, cfg)
	}
	if err != nil {
		return err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	s.kv = kv
	s.setReplicas(status.Config().Replicas)
	return nil
}

// create makes the bucket with as many replicas as the cluster allows,
// down from three.
func (s *Store) create(ctx context.Context, cfg StoreConfig) (jetstream.KeyValue, error) {
	kvc := jetstream.KeyValueConfig{
		Bucket:      cfg.Name,
		Description: "ocis storage placement: account id → the node whose storage holds the account's files",
		History:     history,
		Storage:     jetstream.FileStorage,
	}
	return natsconn.CreateKeyValue(ctx, s.js, kvc, cfg.Replicas)
}

// scaleUp asks, at most once a minute, for one more replica while the
// bucket has fewer than three: the first node of a cluster may have
// created it before the other servers joined, and placements must
// survive the loss of a server.
func (s *Store) scaleUp(ctx context.Context) {
	s.mu.Lock()
	if !s.auto || s.replicas >= maxReplicas || time.Since(s.lastScale) < scaleEvery {
		s.mu.Unlock()
		return
	}
	s.lastScale = time.Now()
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	status, err := s.kv.Status(ctx)
	if err != nil {
		return
	}
	cfg := status.Config()
	if cfg.Replicas >= maxReplicas {
		s.setReplicas(cfg.Replicas)
		return
	}
	cfg.Replicas++
	if _, err := s.js.UpdateKeyValue(ctx, cfg); err != nil {
		if !natsconn.TooFewServers(err) {
			level.Debug(s.logger).Log("msg", "placement bucket keeps its replicas", "replicas", cfg.Replicas-1, "err", err)
		}
		return
	}
	level.Info(s.logger).Log("msg", "placement bucket replicated further", "replicas", cfg.Replicas)
	s.setReplicas(cfg.Replicas)
}

func (s *Store) setReplicas(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas = n
}

// Replicas is the number of copies the bucket had when last looked at.
func (s *Store) Replicas() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replicas
}

// Conn is the connection the store was opened on.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Get returns user's placement; found is false when the user has none.
func (s *Store) Get(ctx context.Context, user string) (rec Record, found bool, err error) {
	if err := ValidateUser(user); err != nil {
		return Record{}, false, err
	}
	e, err := s.kv.Get(ctx, user)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("get placement of %s: %w", user, err)
	}
	rec, err = decodeRecord(e.Value())
	if err != nil {
		return Record{}, false, fmt.Errorf("placement of %s: %w", user, err)
	}
	return rec, true, nil
}

// Create places user with rec unless the user is placed already; it
// returns the placement in force, and created is true only for the one
// caller that won a race of several. KV Create is what makes the race
// safe: it succeeds only where the key does not exist (or was deleted).
func (s *Store) Create(ctx context.Context, user string, rec Record) (inForce Record, created bool, err error) {
	if err := ValidateUser(user); err != nil {
		return Record{}, false, err
	}
	_, err = s.kv.Create(ctx, user, rec.encode())
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return Record{}, false, fmt.Errorf("place %s: %w", user, err)
	}
	won, found, err := s.Get(ctx, user)
	if err != nil {
		return Record{}, false, err
	}
	if !found {
		// Deleted between the two calls: an operator is at work.
		return Record{}, false, fmt.Errorf("place %s: placement deleted while being read", user)
	}
	return won, false, nil
}

// Set places user with rec whatever the placement was: an operator's move.
func (s *Store) Set(ctx context.Context, user string, rec Record) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, user, rec.encode()); err != nil {
		return fmt.Errorf("set placement of %s: %w", user, err)
	}
	return nil
}

// Delete removes user's placement: the next write places the user afresh.
func (s *Store) Delete(ctx context.Context, user string) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, user); err != nil {
		return fmt.Errorf("delete placement of %s: %w", user, err)
	}
	return nil
}

// List returns every placement, by account id.
func (s *Store) List(ctx context.Context) (map[string]Record, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list placements: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]Record{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list placements: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list placements: watch ended early")
			}
			if e == nil {
				return out, nil
			}
			if rec, err := decodeRecord(e.Value()); err == nil {
				out[e.Key()] = rec
			}
		}
	}
}

// watch watches every key until stop is called or ctx ends. Making the
// watch is bounded: JetStream without a meta leader never answers.
func (s *Store) watch(ctx context.Context) (jetstream.KeyWatcher, func(), error) {
	wctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(5*time.Second, cancel)
	w, err := s.kv.WatchAll(wctx)
	if !timer.Stop() || err != nil {
		cancel()
		if err == nil {
			err = fmt.Errorf("watch placements: %w", context.DeadlineExceeded)
		}
		return nil, nil, err
	}
	return w, func() { _ = w.Stop(); cancel() }, nil
}
