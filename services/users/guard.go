package users

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

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
	// UserBurst failures of one username from one client address, and
	// AddrBurst of one client address, are allowed at once; each budget
	// refills one failure per Refill. One username from all addresses
	// together may fail ten times as often: enough that no single address
	// can lock a name out, while a name still cannot be guessed at more
	// than ten addresses' pace.
	UserBurst, AddrBurst int
	Refill               time.Duration
	// Tarpit is the longest a refused login is held before its 429, so
	// that a client hammering without waiting costs a sleeping goroutine,
	// not CPU.
	Tarpit time.Duration
}

// guard keeps password guessing from starving everyone:
//   - every login reserves one failure of its address's budget, of its
//     username's from that address, and of its username's overall before
//     any bcrypt runs, and gets them back on success, so no more guesses
//     are ever under way than the budgets allow;
//   - one client address, and one username, has one password check at a
//     time, so a flood from one address or at one name never queues ahead
//     of other clients;
//   - bcrypt runs in a fixed number of slots, at the lowest CPU priority,
//     leaving the CPUs to every other request.
type guard struct {
	cfg   GuardConfig
	slots chan struct{}
	addrs *budgets // by client address (an IPv6 client by its /64)
	pairs *budgets // by username and client address
	names *budgets // by username, from every address
	turns *turns
	now   func() time.Time
}

func newGuard(cfg GuardConfig) *guard {
	return &guard{
		cfg:   cfg,
		slots: make(chan struct{}, max(1, cfg.Slots)),
		addrs: newBudgets(cfg.AddrBurst, cfg.Refill),
		pairs: newBudgets(cfg.UserBurst, cfg.Refill),
		names: newBudgets(10*cfg.UserBurst, cfg.Refill/10),
		turns: &turns{byKey: map[string]*turn{}},
		now:   time.Now,
	}
}

// attempt is one admitted login; done settles its reservations.
type attempt struct {
	g    *guard
	keys [3]string // of addrs, pairs and names
}

// done keeps the reserved failures when the login failed and gives them
// back when it succeeded.
func (a attempt) done(succeeded bool) {
	if succeeded {
		a.g.give(a.keys, 3, a.g.now())
	}
}

// budgets are the guard's budgets in the order admit takes from them.
func (g *guard) budgets() []*budgets { return []*budgets{g.addrs, g.pairs, g.names} }

// give returns the first n of keys' reservations.
func (g *guard) give(keys [3]string, n int, now time.Time) {
	for i, b := range g.budgets()[:n] {
		b.give(keys[i], now)
	}
}

// addrKey is what a client address is budgeted by: an IPv6 client owns a
// whole /64, so it counts as one address.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return addr
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// admit reserves a failure of every budget the login counts against, or
// refuses it (after the tarpit) when one is spent.
func (g *guard) admit(ctx context.Context, user, addr string) (attempt, error) {
	now := g.now()
	a := addrKey(addr)
	keys := [3]string{a, user + "\x00" + a, user}
	var wait time.Duration
	// The address first: a spent address never adds names to remember.
	for i, b := range g.budgets() {
		if wait = b.take(keys[i], now); wait > 0 {
			g.give(keys, i, now)
			break
		}
	}
	if wait == 0 {
		return attempt{g: g, keys: keys}, nil
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
func (g *guard) hash(ctx context.Context, keys []string, fn func() error) error {
	timer := time.NewTimer(g.cfg.SlotWait)
	defer timer.Stop()
	busy := func(err error) error {
		if err != nil {
			return fmt.Errorf("%w: waiting for a password check: %w", apierr.ErrUnavailable, err)
		}
		return apierr.WithRetryAfter(ErrBusy, time.Second)
	}
	// One check at a time per key, taken in the order given (every caller
	// gives address before name, so no two wait on each other).
	for _, key := range keys {
		t := g.turns.get(key)
		defer g.turns.put(key, t)
		select {
		case t.ch <- struct{}{}:
			defer func() { <-t.ch }()
		case <-timer.C:
			return busy(nil)
		case <-ctx.Done():
			return busy(ctx.Err())
		}
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

// checkKeys are the turns a login's password check takes: one per client
// address and one per username, so guesses from many addresses at one
// name, like those from one address at many names, queue behind each
// other and not ahead of everyone else's logins.
func checkKeys(user, addr string) []string {
	return []string{"addr\x00" + addrKey(addr), "name\x00" + user}
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

// budgets are failure budgets by key: token buckets that hold up to burst
// failures and refill one per refill period. (x/time/rate cannot give a
// token back once its reservation's moment has passed, which a login that
// succeeds needs.) Keys whose budget is full again are forgotten, so
// spraying names costs memory only while they are spent.
type budgets struct {
	burst  float64
	refill time.Duration

	mu        sync.Mutex
	byKey     map[string]*bucket
	sweepSize int
}

// bucket is one key's budget: tokens as of at.
type bucket struct {
	tokens float64
	at     time.Time
}

func newBudgets(burst int, refill time.Duration) *budgets {
	return &budgets{burst: float64(max(1, burst)), refill: refill, byKey: map[string]*bucket{}, sweepSize: 1024}
}

// level returns key's tokens at now, refilled since they were last counted.
func (b *budgets) level(bk *bucket, now time.Time) float64 {
	if elapsed := now.Sub(bk.at); elapsed > 0 && b.refill > 0 {
		return min(b.burst, bk.tokens+float64(elapsed)/float64(b.refill))
	}
	return bk.tokens
}

// take spends one failure of key's budget and returns 0, or, when none is
// left, spends nothing and returns how long until one is.
func (b *budgets) take(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, ok := b.byKey[key]
	if !ok {
		if len(b.byKey) >= b.sweepSize {
			b.sweep(now)
		}
		bk = &bucket{tokens: b.burst, at: now}
		b.byKey[key] = bk
	}
	tokens := b.level(bk, now)
	if tokens < 1 {
		return time.Duration((1 - tokens) * float64(b.refill))
	}
	bk.tokens, bk.at = tokens-1, now
	return 0
}

// give returns one failure to key's budget.
func (b *budgets) give(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk, ok := b.byKey[key]; ok {
		bk.tokens, bk.at = min(b.burst, b.level(bk, now)+1), now
	}
}

// sweep forgets full budgets; the next sweep waits until the map doubled,
// so sweeping costs O(1) per take on average.
func (b *budgets) sweep(now time.Time) {
	for k, bk := range b.byKey {
		if b.level(bk, now) >= b.burst {
			delete(b.byKey, k)
		}
	}
	b.sweepSize = max(1024, 2*len(b.byKey))
}
