package users

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
)

func TestGuardBudgets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newGuard(GuardConfig{Slots: 1, SlotWait: time.Second, UserBurst: 3, AddrBurst: 5, Refill: 10 * time.Second, Tarpit: 0})
	g.now = func() time.Time { return now }
	// try admits a login and settles it as failed or succeeded a moment
	// later, as a real password check would.
	try := func(user, addr string, succeeds bool) bool {
		t.Helper()
		a, err := g.admit(context.Background(), user, addr)
		if err != nil && !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("admit: %v", err)
		}
		if err == nil {
			now = now.Add(time.Millisecond)
			a.done(succeeds)
		}
		return err == nil
	}

	for range 3 {
		if !try("alice", "192.0.2.1", false) {
			t.Fatal("alice refused within her burst")
		}
	}
	if try("alice", "192.0.2.1", false) {
		t.Error("alice admitted from the same address past her burst")
	}
	_, err := g.admit(context.Background(), "alice", "192.0.2.1")
	// One failure refills in 10 s, less the few milliseconds the clock
	// moved since the first.
	if wait, ok := apierr.RetryAfterOf(err); !ok || wait > 10*time.Second || wait < 9900*time.Millisecond {
		t.Errorf("Retry-After = %v, %t; want just under 10s", wait, ok)
	}
	// Somebody else's guesses from elsewhere do not lock alice out.
	if !try("alice", "192.0.2.9", true) {
		t.Error("alice locked out everywhere by failures from one address")
	}
	// Successes cost nothing: bob logs in again and again.
	for range 10 {
		if !try("bob", "192.0.2.9", true) {
			t.Fatal("bob's successful logins were counted as failures")
		}
	}
	// Two more failures from 192.0.2.1 use up that address for everyone.
	try("bob", "192.0.2.1", false)
	try("carol", "192.0.2.1", false)
	if try("dave", "192.0.2.1", true) {
		t.Error("an address past its burst is admitted under a fresh name")
	}
	// An IPv6 client owns its /64: a new address in it is the same client.
	for range 3 {
		try("erin", "2001:db8:1:2::1", false)
	}
	if try("erin", "2001:db8:1:2::ffff", false) {
		t.Error("a new address in the same /64 escaped its budget")
	}
	if !try("erin", "2001:db8:1:3::1", false) {
		t.Error("another /64 was refused")
	}

	now = now.Add(10 * time.Second)
	if !try("alice", "192.0.2.1", false) {
		t.Error("alice refused after one refill period")
	}
	if try("alice", "192.0.2.1", false) {
		t.Error("alice admitted twice on one refill")
	}

	// From many addresses together, a name fails at most ten times its
	// burst before it is refused everywhere.
	var admitted int
	for i := range 100 {
		if try("mallory", "198.51.100."+strconv.Itoa(i), false) {
			admitted++
		}
	}
	if admitted != 30 {
		t.Errorf("%d guesses at one name from 100 addresses admitted, want 30 (ten bursts)", admitted)
	}
}

// TestGuardReservesBeforeChecking shows that concurrent guesses cannot
// overrun a budget: each admission reserves its failure up front.
func TestGuardReservesBeforeChecking(t *testing.T) {
	g := newGuard(GuardConfig{Slots: 1, SlotWait: time.Second, UserBurst: 4, AddrBurst: 100, Refill: time.Hour})
	var admitted int
	for range 20 {
		if _, err := g.admit(context.Background(), "admin", "192.0.2.1"); err == nil {
			admitted++ // never settled: all still under way
		}
	}
	if admitted != 4 {
		t.Errorf("%d guesses admitted at once, want the burst of 4", admitted)
	}
}

func TestGuardTarpitEndsWithTheRequest(t *testing.T) {
	g := newGuard(GuardConfig{Slots: 1, SlotWait: time.Second, UserBurst: 1, AddrBurst: 1, Refill: time.Hour, Tarpit: time.Hour})
	if a, err := g.admit(context.Background(), "alice", "a"); err != nil {
		t.Fatal(err)
	} else {
		a.done(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := g.admit(ctx, "alice", "a")
	if !errors.Is(err, ErrTooManyFailures) {
		t.Fatalf("err = %v, want %v", err, ErrTooManyFailures)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("a cancelled request was held %s", took)
	}
}

func TestGuardSlotsBoundConcurrency(t *testing.T) {
	g := newGuard(GuardConfig{Slots: 2, SlotWait: 5 * time.Second, UserBurst: 1, AddrBurst: 1, Refill: time.Hour})
	var running, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			err := g.hash(context.Background(), []string{strconv.Itoa(i)}, func() error {
				n := running.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := most.Load(); got != 2 {
		t.Errorf("at most %d ran at once, want 2", got)
	}

	// With both slots held, a check that cannot get one in time is busy.
	g = newGuard(GuardConfig{Slots: 1, SlotWait: 10 * time.Millisecond, UserBurst: 1, AddrBurst: 1, Refill: time.Hour})
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = g.hash(context.Background(), []string{"a"}, func() error { close(held); <-release; return nil })
	}()
	<-held
	err := g.hash(context.Background(), []string{"b"}, func() error { return nil })
	close(release)
	if !errors.Is(err, ErrBusy) {
		t.Errorf("err = %v, want %v", err, ErrBusy)
	}
	if _, ok := apierr.RetryAfterOf(err); !ok {
		t.Error("busy answer carries no Retry-After")
	}
}

// TestGuardOneTurnPerAddress shows that checks from one address run one
// at a time, while another address is not held up behind them.
func TestGuardOneTurnPerAddress(t *testing.T) {
	g := newGuard(GuardConfig{Slots: 4, SlotWait: 5 * time.Second, UserBurst: 1, AddrBurst: 1, Refill: time.Hour})
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = g.hash(context.Background(), []string{"flood"}, func() error { close(held); <-release; return nil })
	}()
	<-held
	queued := make(chan struct{})
	go func() {
		_ = g.hash(context.Background(), []string{"flood"}, func() error { close(queued); return nil })
	}()
	if err := g.hash(context.Background(), []string{"other"}, func() error { return nil }); err != nil {
		t.Fatalf("another address: %v", err)
	}
	select {
	case <-queued:
		t.Fatal("a second check from the same address ran beside the first")
	default:
	}
	close(release)
	<-queued
}

func TestBudgetsForgetFullKeys(t *testing.T) {
	now := time.Now()
	b := newBudgets(2, time.Second)
	b.sweepSize = 4
	for _, k := range []string{"a", "b", "c", "d"} {
		b.take(k, now)
	}
	// All four refilled by now; the fifth key sweeps them away.
	b.take("e", now.Add(time.Minute))
	if len(b.byKey) != 1 {
		t.Errorf("%d keys kept after a sweep, want 1", len(b.byKey))
	}
}

// TestLoginLockout drives the guard through Login: the failures of one
// name run out, the right password is then refused as well until the
// budget refills, and other names are untouched.
func TestLoginLockout(t *testing.T) {
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	a, err := newAccounts(openTestStore(t, t.TempDir()), keys, revoked, testTokenTTL, bcrypt.MinCost,
		GuardConfig{Slots: 1, SlotWait: time.Second, UserBurst: 2, AddrBurst: 100, Refill: time.Hour, Tarpit: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, a)
	login := func(user, password string) error {
		_, err := a.Login(context.Background(), LoginRequest{Username: user, Password: password, ClientAddr: "192.0.2.1"})
		return err
	}
	for range 2 {
		if err := login("alice", "wrong-pass-1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: err = %v, want %v", err, ErrBadCredentials)
		}
	}
	if err := login("alice", alicePassword); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("right password while locked: err = %v, want %v", err, ErrTooManyFailures)
	}
	// A name no account can have costs nothing and is remembered nowhere,
	// however long: spraying such names cannot fill the budgets.
	before := len(a.guard.names.byKey)
	for i := range 50 {
		long := strings.Repeat("x", 64<<10) + strconv.Itoa(i)
		if err := login(long, "whatever-1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a 64 KiB name: err = %v, want %v", err, ErrBadCredentials)
		}
	}
	if after := len(a.guard.names.byKey); after != before {
		t.Errorf("invalid names were remembered: %d budgets, want %d", after, before)
	}
	// Successes give their reservation back, on the real clock too: far
	// more logins than the burst all go through.
	for i := range 20 {
		if err := login(testAdminUser, adminPassword); err != nil {
			t.Fatalf("login %d of a user with a burst of 2 while alice is locked: %v", i+1, err)
		}
	}
}
