package users

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// ErrTooManyFailures answers a login for a name or from an address that has
// used up its failures; the answer carries Retry-After.
var ErrTooManyFailures = apierr.New(apierr.CodeResourceExhausted, "users.too_many_failures", "too many failed logins")

// ErrBusy answers a password check that found no free slot in time.
var ErrBusy = apierr.New(apierr.CodeResourceExhausted, "users.busy", "too many password checks at once")

// GuardConfig bounds what password checks may cost.
type GuardConfig struct {
	// Slots is how many bcrypt computations may run at once.
	Slots int
	// SlotWait is how long a check waits for its turn before ErrBusy.
	SlotWait time.Duration
	// UserBurst failures of one username, and AddrBurst of one client
	// address, are allowed at once; each budget refills one failure per
	// Refill.
	UserBurst, AddrBurst int
	Refill               time.Duration
	// Tarpit is the longest a refused login is held before its 429, so
	// that a client hammering without waiting costs a sleeping goroutine,
	// not CPU.
	Tarpit time.Duration
}

// guard keeps password guessing from starving everyone:
//   - every login reserves one failure of its username's budget and of its
//     address's before any bcrypt runs, and gets them back on success, so
//     no more guesses are ever under way than the budgets allow;
//   - one client address has one password check at a time, so a flood
//     from one address never queues ahead of other clients;
//   - bcrypt runs in a fixed number of slots, at the lowest CPU priority,
//     leaving the CPUs to every other request.
type guard struct {
	cfg   GuardConfig
	slots chan struct{}
	users *budgets
	addrs *budgets
	turns *turns
	now   func() time.Time
}

func newGuard(cfg GuardConfig) *guard {
	return &guard{
		cfg:   cfg,
		slots: make(chan struct{}, max(1, cfg.Slots)),
		users: newBudgets(cfg.UserBurst, cfg.Refill),
		addrs: newBudgets(cfg.AddrBurst, cfg.Refill),
		turns: &turns{byKey: map[string]*turn{}},
		now:   time.Now,
	}
}

// attempt is one admitted login; done settles its reservations.
type attempt struct {
	g          *guard
	user, addr *rate.Reservation
}

// done keeps the reserved failures when the login failed and returns them
// when it succeeded.
func (a attempt) done(succeeded bool) {
	if succeeded {
		now := a.g.now()
		a.user.CancelAt(now)
		a.addr.CancelAt(now)
	}
}

// admit reserves a failure of addr and of user, or refuses the login
// (after the tarpit) when either budget is spent.
func (g *guard) admit(ctx context.Context, user, addr string) (attempt, error) {
	now := g.now()
	// The address first: a spent address never adds names to remember.
	ra, wait := g.addrs.reserve(addr, now)
	if wait == 0 {
		var ru *rate.Reservation
		ru, wait = g.users.reserve(user, now)
		if wait == 0 {
			return attempt{g: g, user: ru, addr: ra}, nil
		}
		ra.CancelAt(now)
	}
	pause := time.NewTimer(min(wait, g.cfg.Tarpit))
	defer pause.Stop()
	select {
	case <-pause.C:
	case <-ctx.Done():
	}
	return attempt{}, apierr.WithRetryAfter(ErrTooManyFailures, wait)
}

// hash runs fn, a bcrypt computation, once addr's turn and a slot come up.
func (g *guard) hash(ctx context.Context, addr string, fn func() error) error {
	timer := time.NewTimer(g.cfg.SlotWait)
	defer timer.Stop()
	busy := func(err error) error {
		if err != nil {
			return fmt.Errorf("%w: waiting for a password check: %w", apierr.ErrUnavailable, err)
		}
		return apierr.WithRetryAfter(ErrBusy, time.Second)
	}
	t := g.turns.get(addr)
	defer g.turns.put(addr, t)
	select {
	case t.ch <- struct{}{}:
		defer func() { <-t.ch }()
	case <-timer.C:
		return busy(nil)
	case <-ctx.Done():
		return busy(ctx.Err())
	}
	select {
	case g.slots <- struct{}{}:
		defer func() { <-g.slots }()
	case <-timer.C:
		return busy(nil)
	case <-ctx.Done():
		return busy(ctx.Err())
	}
	return atLowestPriority(fn)
}

// turns give each key one check at a time; a key's entry lives while
// someone holds or waits for it.
type turns struct {
	mu    sync.Mutex
	byKey map[string]*turn
}

type turn struct {
	ch   chan struct{}
	refs int
}

func (ts *turns) get(key string) *turn {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.byKey[key]
	if !ok {
		t = &turn{ch: make(chan struct{}, 1)}
		ts.byKey[key] = t
	}
	t.refs++
	return t
}

func (ts *turns) put(key string, t *turn) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t.refs--; t.refs == 0 {
		delete(ts.byKey, key)
	}
}

// budgets are failure budgets by key. Keys whose budget is full again are
// forgotten, so spraying names costs memory only while they are spent.
type budgets struct {
	burst int
	every rate.Limit

	mu        sync.Mutex
	byKey     map[string]*rate.Limiter
	sweepSize int
}

func newBudgets(burst int, refill time.Duration) *budgets {
	return &budgets{burst: max(1, burst), every: rate.Every(refill), byKey: map[string]*rate.Limiter{}, sweepSize: 1024}
}

// reserve takes one failure of key's budget; when none is left it takes
// nothing and says how long until one is.
func (b *budgets) reserve(key string, now time.Time) (*rate.Reservation, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim, ok := b.byKey[key]
	if !ok {
		if len(b.byKey) >= b.sweepSize {
			b.sweep(now)
		}
		lim = rate.NewLimiter(b.every, b.burst)
		b.byKey[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return r, 0
}

// sweep forgets full budgets; the next sweep waits until the map doubled,
// so sweeping costs O(1) per reservation on average.
func (b *budgets) sweep(now time.Time) {
	for k, lim := range b.byKey {
		if lim.TokensAt(now) >= float64(b.burst) {
			delete(b.byKey, k)
		}
	}
	b.sweepSize = max(1024, 2*len(b.byKey))
}
