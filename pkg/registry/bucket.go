package registry

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

// Defaults of BucketConfig.
const (
	// BucketName is the JetStream key-value bucket of the registry.
	BucketName = "ocis-registry"
	// DefaultTTL is how long a node's key lives without a rewrite
	// (OCIS_REGISTRY_TTL): a lost node leaves the registry within it.
	DefaultTTL = 10 * time.Second
	// maxReplicas is the most copies of the bucket worth keeping: three
	// survive the loss of any one server.
	maxReplicas = 3
	// scaleEvery is how often a bucket with fewer replicas than it could
	// have tries for more, as servers join the cluster.
	scaleEvery = time.Minute
)

// BucketConfig says which bucket holds the registry and how.
type BucketConfig struct {
	// Name defaults to BucketName; tests use their own.
	Name string
	// TTL defaults to DefaultTTL. It is the bucket's: a node's key expires
	// TTL after its last write and watchers are told. An existing bucket
	// keeps the TTL it was created with, and that is the one in force.
	TTL time.Duration
	// Replicas is the number of copies; 0 means min(3, cluster size),
	// found by asking for 3 and settling for fewer, then trying for more
	// every minute as servers join.
	Replicas int
	// Logger defaults to no logging.
	Logger log.Logger
}

// Bucket is the registry's key-value bucket, opened on one connection.
// Announcers and watchers of the same process share it.
type Bucket struct {
	name   string
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	ttl    time.Duration
	auto   bool
	logger log.Logger

	mu        sync.Mutex
	replicas  int
	lastScale time.Time
}

// OpenBucket binds to the registry bucket, creating it when it does not
// exist. JetStream may not answer yet (a cluster without a quorum, the
// local nats service still starting): OpenBucket then retries until it
// does or ctx ends, so give ctx the deadline you can afford.
func OpenBucket(ctx context.Context, nc *nats.Conn, cfg BucketConfig) (*Bucket, error) {
	if cfg.Name == "" {
		cfg.Name = BucketName
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("registry TTL %s is below 1s (OCIS_REGISTRY_TTL)", cfg.TTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	b := &Bucket{name: cfg.Name, nc: nc, js: js, auto: cfg.Replicas == 0, logger: log.With(cfg.Logger, "bucket", cfg.Name)}

	backoff := retry{min: 50 * time.Millisecond, max: 2 * time.Second}
	for {
		err := b.open(ctx, cfg)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrInvalidBucketName) || errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) || errors.Is(err, errNoMarkers) {
			return nil, fmt.Errorf("registry bucket %s: %w", cfg.Name, err)
		}
		// A stop during the wait cancels ctx: that is no news.
		if backoff.n == 0 && ctx.Err() == nil {
			level.Warn(b.logger).Log("msg", "registry bucket not reachable yet, retrying", "err", err)
		}
		if werr := backoff.wait(ctx); werr != nil {
			return nil, fmt.Errorf("open registry bucket %s: %w (last error: %w)", cfg.Name, werr, err)
		}
	}
	if b.ttl != cfg.TTL {
		level.Warn(b.logger).Log("msg", "registry bucket keeps the TTL it was created with", "bucket_ttl", b.ttl, "configured_ttl", cfg.TTL)
	}
	level.Info(b.logger).Log("msg", "registry bucket open", "ttl", b.ttl, "replicas", b.replicas)
	return b, nil
}

var errNoMarkers = errors.New("the bucket has no limit markers, so watchers would never hear that a node expired: delete it and let ocis create it again")

// open binds to or creates the bucket once.
func (b *Bucket) open(ctx context.Context, cfg BucketConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := b.js.KeyValue(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.create(ctx, cfg)
	}
	if err != nil {
		return err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	if status.LimitMarkerTTL() == 0 {
		return errNoMarkers
	}
	b.kv, b.ttl = kv, status.TTL()
	b.replicas = status.Config().Replicas
	return nil
}

// create makes the bucket with as many replicas as the cluster allows,
// down from three.
func (b *Bucket) create(ctx context.Context, cfg BucketConfig) (jetstream.KeyValue, error) {
	kvc := jetstream.KeyValueConfig{
		Bucket:      cfg.Name,
		Description: "ocis registry: one key per node, expiring when the node stops writing",
		History:     1,
		TTL:         cfg.TTL,
		// Markers tell watchers that a key expired; they outlive the
		// key by one TTL, long enough for every watcher to be told.
		LimitMarkerTTL: cfg.TTL,
		Storage:        jetstream.FileStorage,
	}
	return natsconn.CreateKeyValue(ctx, b.js, kvc, cfg.Replicas)
}

// scaleUp asks, at most once a minute, for one more replica while the
// bucket has fewer than three: the first node of a cluster may have
// created it before the other servers joined.
func (b *Bucket) scaleUp(ctx context.Context) {
	b.mu.Lock()
	if !b.auto || b.replicas >= maxReplicas || time.Since(b.lastScale) < scaleEvery {
		b.mu.Unlock()
		return
	}
	b.lastScale = time.Now()
	b.mu.Unlock()

	status, err := b.kv.Status(ctx)
	if err != nil {
		return
	}
	cfg := status.Config()
	if cfg.Replicas >= maxReplicas {
		b.setReplicas(cfg.Replicas)
		return
	}
	cfg.Replicas++
	if _, err := b.js.UpdateKeyValue(ctx, cfg); err != nil {
		if !natsconn.TooFewServers(err) {
			level.Debug(b.logger).Log("msg", "registry bucket keeps its replicas", "replicas", cfg.Replicas-1, "err", err)
		}
		return
	}
	level.Info(b.logger).Log("msg", "registry bucket replicated further", "replicas", cfg.Replicas)
	b.setReplicas(cfg.Replicas)
}

func (b *Bucket) setReplicas(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replicas = n
}

// watch watches keys (a key or a wildcard) until stop is called or ctx
// ends: a KV watch lives as long as the context it was made with, so the
// context is cut only by stop, or when making the watch takes too long.
// A request to a JetStream without a meta leader goes unanswered, so that
// bound is what makes a watch attempt fail instead of hang: half a TTL, 1
// to 5 s, short enough for stale nodes to be dropped on time meanwhile.
func (b *Bucket) watch(ctx context.Context, keys string) (jetstream.KeyWatcher, func(), error) {
	wctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(min(max(b.ttl/2, time.Second), 5*time.Second), cancel)
	w, err := b.kv.Watch(wctx, keys)
	if !timer.Stop() || err != nil {
		cancel()
		if err == nil {
			err = fmt.Errorf("watch %s: %w", keys, context.DeadlineExceeded)
		}
		return nil, nil, err
	}
	return w, func() { _ = w.Stop(); cancel() }, nil
}

// aliveSubject is the core NATS subject on which node's announcer says it
// is alive between writes ("*" for every node). It needs no JetStream, so
// it goes on while a bucket's stream elects a new leader, which takes 4 to
// 9 s after the leader's server is lost: a watcher tells a live node from a
// dead one all the same.
func (b *Bucket) aliveSubject(node string) string {
	return "ocis.registry." + b.name + ".alive." + node
}

// TTL is the bucket's TTL, the one in force.
func (b *Bucket) TTL() time.Duration { return b.ttl }

// Replicas is the number of copies the bucket had when last looked at.
func (b *Bucket) Replicas() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.replicas
}

// Conn is the connection the bucket was opened on.
func (b *Bucket) Conn() *nats.Conn { return b.nc }

// retry is a capped exponential backoff.
type retry struct {
	min, max time.Duration
	n        int
}

// next returns the next backoff step.
func (r *retry) next() time.Duration {
	d := r.min << min(r.n, 10)
	if d > r.max {
		d = r.max
	}
	r.n++
	return d
}

// wait sleeps for the next backoff step or until ctx ends.
func (r *retry) wait(ctx context.Context) error {
	t := time.NewTimer(r.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
