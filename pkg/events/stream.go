package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
)

// Defaults of StreamConfig.
const (
	// StreamName is the JetStream stream that holds every event.
	StreamName = "ocis-events"
	// DefaultMaxAge is how long an event stays in the stream whether or
	// not every consumer has it: how long a stopped consumer can be away
	// and still catch up, and how far back a new consumer starts.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultMaxBytes caps the stream's size on each server; the oldest
	// events go first.
	DefaultMaxBytes = 1 << 30
	// DefaultDuplicates is JetStream's duplicate window: a publisher's
	// retry of an event within it is dropped by the server (Nats-Msg-Id).
	DefaultDuplicates = 2 * time.Minute
	// maxReplicas is the most copies worth keeping: three survive the
	// loss of any one server.
	maxReplicas = 3
	// scaleEvery is how often a stream with fewer replicas than it could
	// have tries for more, as servers join the cluster.
	scaleEvery = time.Minute
	// maxEventSize is the largest event message the stream takes.
	maxEventSize = 1 << 20
)

// StreamConfig says which stream holds the events and how. The first
// process that finds no stream creates it with these settings; an existing
// stream keeps the settings it was created with.
type StreamConfig struct {
	// Name defaults to StreamName.
	Name string
	// Replicas is the number of copies; 0 means min(3, cluster size),
	// found by asking for 3 and settling for fewer, then asking for one
	// more at most once a minute as servers join.
	Replicas int
	// MaxAge defaults to DefaultMaxAge, MaxBytes to DefaultMaxBytes,
	// Duplicates to DefaultDuplicates.
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = StreamName
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Duplicates <= 0 {
		c.Duplicates = DefaultDuplicates
	}
	return c
}

// stream binds a publisher or consumer to the events stream, creating
// it when missing. JetStream may not answer (no quorum yet, the local nats
// service still starting, NATS down): callers retry with ensure.
type stream struct {
	js     jetstream.JetStream
	cfg    StreamConfig
	logger log.Logger

	mu        sync.Mutex
	replicas  int // 0 while not bound
	lastScale time.Time
}

func newStream(js jetstream.JetStream, cfg StreamConfig, logger log.Logger) *stream {
	return &stream{js: js, cfg: cfg.withDefaults(), logger: logger}
}

// ensure binds to or creates the stream, retrying with backoff while
// JetStream does not answer, until it succeeds or ctx ends.
func (s *stream) ensure(ctx context.Context) error {
	backoff := retry{min: 50 * time.Millisecond, max: 2 * time.Second}
	for {
		err := s.open(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrInvalidStreamName) {
			return fmt.Errorf("events stream %s: %w", s.cfg.Name, err)
		}
		// A stop during the wait cancels ctx: that is no news.
		if backoff.n == 0 && ctx.Err() == nil {
			level.Warn(s.logger).Log("msg", "events stream not reachable yet, retrying", "stream", s.cfg.Name, "err", err)
		}
		if werr := backoff.wait(ctx); werr != nil {
			return fmt.Errorf("open events stream %s: %w (last error: %w)", s.cfg.Name, werr, err)
		}
	}
}

// open binds to or creates the stream once.
func (s *stream) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = s.create(ctx)
	}
	if err != nil {
		return err
	}
	replicas := st.CachedInfo().Config.Replicas
	s.mu.Lock()
	first := s.replicas == 0
	s.replicas = replicas
	s.mu.Unlock()
	if first {
		level.Info(s.logger).Log("msg", "events stream open", "stream", s.cfg.Name, "replicas", replicas)
	}
	return nil
}

// create makes the stream with as many replicas as the cluster allows,
// down from three.
func (s *stream) create(ctx context.Context) (jetstream.Stream, error) {
	sc := jetstream.StreamConfig{
		Name:        s.cfg.Name,
		Description: "ocis events: what happened in one service, for the services that react to it",
		Subjects:    []string{SubjectPrefix + ">"},
		// Limits, not interest or work-queue retention: a consumer that
		// does not exist yet (a service enabled later) still finds the
		// last MaxAge of history, and several consumers read the same
		// events independently.
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     s.cfg.MaxAge,
		MaxBytes:   s.cfg.MaxBytes,
		MaxMsgSize: maxEventSize,
		Storage:    jetstream.FileStorage,
		Duplicates: s.cfg.Duplicates,
	}
	var err error
	for _, r := range natsconn.ReplicaChoices(s.cfg.Replicas) {
		sc.Replicas = r
		var st jetstream.Stream
		st, err = s.js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it meanwhile.
			return s.js.Stream(ctx, s.cfg.Name)
		}
		if err == nil || !natsconn.TooFewServers(err) {
			return st, err
		}
	}
	return nil, err
}

// scaleUp asks, at most once a minute, for one more replica while the
// stream has fewer than three and its replicas were chosen automatically:
// the first process of a cluster may have created it before the other
// servers joined.
func (s *stream) scaleUp(ctx context.Context) {
	s.mu.Lock()
	if s.cfg.Replicas != 0 || s.replicas == 0 || s.replicas >= maxReplicas || time.Since(s.lastScale) < scaleEvery {
		s.mu.Unlock()
		return
	}
	s.lastScale = time.Now()
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.cfg.Name)
	if err != nil {
		return
	}
	sc := st.CachedInfo().Config
	if sc.Replicas < maxReplicas {
		sc.Replicas++
		if _, err := s.js.UpdateStream(ctx, sc); err != nil {
			if !natsconn.TooFewServers(err) {
				level.Debug(s.logger).Log("msg", "events stream keeps its replicas", "replicas", sc.Replicas-1, "err", err)
			}
			return
		}
		level.Info(s.logger).Log("msg", "events stream replicated further", "stream", s.cfg.Name, "replicas", sc.Replicas)
	}
	s.mu.Lock()
	s.replicas = sc.Replicas
	s.mu.Unlock()
}

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

// reset starts the backoff over after a success.
func (r *retry) reset() { r.n = 0 }

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

// bound reports whether the stream was found or created.
func (s *stream) bound() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replicas != 0
}

// unbind makes the next send look for the stream again: it was deleted,
// or JetStream lost it.
func (s *stream) unbind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas = 0
}
