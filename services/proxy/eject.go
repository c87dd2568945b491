package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

// An instance that refuses a connection (nothing listens there: its
// service stopped or crashed, its node is gone and the registry does not
// know it yet) is ejected: for a short hold the balancer puts it behind
// every other instance of its service, so requests stop paying a refused
// dial, or a dial timeout for a host that is gone, each time its turn
// comes. It is never left out: when every instance is held, they are all
// still tried, so a service with instances is never answered 503 untried.
const (
	// DefaultEjectHold is the first hold of an instance.
	DefaultEjectHold = time.Second
	// DefaultEjectMaxHold caps the hold, which doubles each time the
	// instance refuses again within that long after its hold ended: an
	// instance that stays away costs one request a dial every few
	// seconds at most, and one that comes back is tried again soon.
	DefaultEjectMaxHold = 8 * time.Second
)

// EjectOptions configure the balancer's ejection of instances that
// refuse connections.
type EjectOptions struct {
	// Hold and MaxHold default to DefaultEjectHold and
	// DefaultEjectMaxHold.
	Hold, MaxHold time.Duration
	// Logger gets one line at info per ejection; it defaults to no
	// logging.
	Logger log.Logger
	// Registerer, when set, gets ocis_proxy_ejections_total.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
}

// ejector holds the instances that refused a connection lately.
type ejector struct {
	hold, maxHold time.Duration
	logger        log.Logger
	now           func() time.Time
	ejections     *prometheus.CounterVec

	// size is len(held), read without the lock: while nothing was
	// refused lately, routing costs one atomic load more.
	size atomic.Int32
	mu   sync.Mutex
	held map[instanceKey]ejection
}

// instanceKey is an instance's identity, as registry.Instance.ID but
// without building a string.
type instanceKey struct{ service, node, addr string }

func keyOf(in registry.Instance) instanceKey { return instanceKey{in.Service, in.Node, in.Addr} }

// ejection is one instance's hold: skipped until until. It is remembered
// for MaxHold after until, so that a refusal then doubles the hold.
type ejection struct {
	until time.Time
	hold  time.Duration
}

func newEjector(opts EjectOptions) *ejector {
	if opts.Hold <= 0 {
		opts.Hold = DefaultEjectHold
	}
	if opts.MaxHold < opts.Hold {
		opts.MaxHold = max(DefaultEjectMaxHold, opts.Hold)
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &ejector{
		hold:    opts.Hold,
		maxHold: opts.MaxHold,
		logger:  opts.Logger,
		now:     opts.Now,
		ejections: promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
			Namespace: "ocis", Subsystem: "proxy", Name: "ejections_total",
			Help: "Instances the proxy passed over for a while after they refused a connection, by service.",
		}, []string{"service"}),
		held: map[instanceKey]ejection{},
	}
}

// ownFault are dial errors of the proxy's own making: out of file
// descriptors or local ports. They say nothing of the instance, and
// ejecting for them would pass over healthy instances one after another.
var ownFault = []error{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS}

// refused ejects in, whose dial failed with err while serving a request
// whose context is ctx. A dial cut short because the request ended says
// nothing of the instance, nor does one that failed for want of the
// proxy's own resources (ownFault). A refusal while in is held (other requests
// dialed it at the same moment, or it was tried because every instance
// was held) changes nothing: one ejection, one line, one count.
func (e *ejector) refused(ctx context.Context, in registry.Instance, err error) {
	if ctx.Err() != nil {
		return
	}
	for _, own := range ownFault {
		if errors.Is(err, own) {
			return
		}
	}
	now := e.now()
	k := keyOf(in)
	e.mu.Lock()
	old, ok := e.held[k]
	if ok && now.Before(old.until) {
		e.mu.Unlock()
		return
	}
	hold := e.hold
	if ok && now.Before(old.until.Add(e.maxHold)) {
		hold = min(2*old.hold, e.maxHold)
	}
	e.held[k] = ejection{until: now.Add(hold), hold: hold}
	e.size.Store(int32(len(e.held)))
	e.mu.Unlock()
	e.ejections.WithLabelValues(in.Service).Inc()
	level.Info(e.logger).Log("msg", "instance ejected after a refused connection", "upstream_service", in.Service,
		"node", in.Node, "upstream", in.Addr, "hold", hold, "err", err)
}

// arrange appends to order the instances of service, in their turn from
// start on, every held one after every other. It forgets the holds of
// instances of service the registry no longer lists: one that comes back
// is a new start (a restart, a node back) and is taken at its turn again.
func (e *ejector) arrange(service string, instances []registry.Instance, start int, order []registry.Instance) []registry.Instance {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweep(service, instances, now)
	n := len(instances)
	for _, wantHeld := range []bool{false, true} {
		for i := range n {
			in := instances[(start+i)%n]
			if e.isHeld(in, now) == wantHeld {
				order = append(order, in)
			}
		}
	}
	return order
}

// forgetGone forgets the holds of the instances of service that
// instances, the registry's list, no longer has.
func (e *ejector) forgetGone(service string, instances []registry.Instance) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sweep(service, instances, now)
}

// sweep forgets what needs no remembering at now: holds ended more than
// MaxHold ago, and the holds of instances of service that instances, the
// registry's list, no longer has. e.mu is held.
func (e *ejector) sweep(service string, instances []registry.Instance, now time.Time) {
	for k, ej := range e.held {
		if !now.Before(ej.until.Add(e.maxHold)) || (k.service == service && !listed(instances, k)) {
			delete(e.held, k)
		}
	}
	e.size.Store(int32(len(e.held)))
}

// isHeld reports whether in is ejected at now; e.mu is held.
func (e *ejector) isHeld(in registry.Instance, now time.Time) bool {
	ej, ok := e.held[keyOf(in)]
	return ok && now.Before(ej.until)
}

func listed(instances []registry.Instance, k instanceKey) bool {
	for _, in := range instances {
		if keyOf(in) == k {
			return true
		}
	}
	return false
}
