package users

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
)

func TestChangePassword(t *testing.T) {
	dir := t.TempDir()
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	st := openTestStore(t, dir)
	a, err := newAccounts(st, keys, revoked, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, a)
	alice := as(t, a, "alice", false)
	old, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a.events = rec

	const newPassword = "new-alice-pass-2"
	for _, tc := range []struct {
		name    string
		req     ChangePasswordRequest
		wantErr error
	}{
		{"wrong current", ChangePasswordRequest{Current: "not-it-1", New: newPassword}, ErrBadCredentials},
		{"weak new", ChangePasswordRequest{Current: alicePassword, New: "short1"}, ErrWeakPassword},
		{"letters only", ChangePasswordRequest{Current: alicePassword, New: "onlyletters"}, ErrWeakPassword},
		{"same as the name", ChangePasswordRequest{Current: alicePassword, New: "alice"}, ErrWeakPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.ChangePassword(alice, tc.req); !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if _, err := keys.Verify(old.Token); err != nil {
				t.Errorf("a refused change revoked the old token: %v", err)
			}
		})
	}
	if got := rec.lines(); len(got) != 0 {
		t.Errorf("refused changes published %v", got)
	}

	if _, err := a.ChangePassword(alice, ChangePasswordRequest{Current: alicePassword, New: newPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old token after the change: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword}); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("login with the old password: err = %v, want %v", err, ErrBadCredentials)
	}
	if got := rec.lines(); len(got) != 1 || !strings.HasPrefix(got[0], EventPasswordChanged+" ") || !strings.Contains(got[0], " alice ") {
		t.Errorf("published %v, want one %s about alice", got, EventPasswordChanged)
	}
	fresh, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: newPassword})
	if err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := keys.Verify(fresh.Token); err != nil {
		t.Errorf("new token refused: %v", err)
	}

	// A restart starts with an empty list; the store fills it.
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	again := auth.NewRevocations()
	restarted := newTestKeys(t, testSecret).CheckRevocations(again)
	if _, err := newAccounts(openTestStore(t, dir), restarted, again, testTokenTTL, bcrypt.MinCost, testGuard); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old token after a restart: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := restarted.Verify(fresh.Token); err != nil {
		t.Errorf("new token after a restart: %v", err)
	}
}

// TestChangePasswordSpendsLoginBudget: a token cannot be used to guess the
// password behind it faster than logins could.
func TestChangePasswordSpendsLoginBudget(t *testing.T) {
	a, _ := newTestAccounts(t)
	a.guard = newGuard(GuardConfig{Slots: 1, SlotWait: time.Second, UserBurst: 2, AddrBurst: 100, Refill: time.Hour, Tarpit: time.Millisecond})
	seed(t, a)
	alice := as(t, a, "alice", false)
	req := ChangePasswordRequest{Current: "guess-no-1", New: "new-alice-pass-2", ClientAddr: "192.0.2.1"}
	for i := range 2 {
		if _, err := a.ChangePassword(alice, req); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d: err = %v, want %v", i+1, err, ErrBadCredentials)
		}
	}
	req.Current = alicePassword
	if _, err := a.ChangePassword(alice, req); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("right password after the budget is spent: err = %v, want %v", err, ErrTooManyFailures)
	}
	// The same budget as logins: the login is refused too.
	if _, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword, ClientAddr: "192.0.2.1"}); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("login after guesses through a change: err = %v, want %v", err, ErrTooManyFailures)
	}
}

func TestSetPassword(t *testing.T) {
	a, keys := newTestAccounts(t)
	seed(t, a)
	old, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		req      SetPasswordRequest
		wantCode apierr.Code
	}{
		{"not admin", as(t, a, "alice", false), SetPasswordRequest{Username: "alice", New: "reset-pass-3"}, apierr.CodePermissionDenied},
		{"unknown user", as(t, a, testAdminUser, true), SetPasswordRequest{Username: "nobody", New: "reset-pass-3"}, apierr.CodeNotFound},
		{"weak", as(t, a, testAdminUser, true), SetPasswordRequest{Username: "alice", New: "weak"}, apierr.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.SetPassword(tc.ctx, tc.req); apierr.CodeOf(err) != tc.wantCode {
				t.Errorf("err = %v, want code %s", err, tc.wantCode)
			}
		})
	}
	if _, err := a.SetPassword(as(t, a, testAdminUser, true), SetPasswordRequest{Username: "alice", New: "reset-pass-3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old token after a reset: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: "reset-pass-3"}); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
}

func TestSetPasswordOffline(t *testing.T) {
	shared := service.NewShared()
	shared.BaseDataPath = t.TempDir()
	cfg := Descriptor().NewConfig().(*Config)
	cfg.BcryptCost = bcrypt.MinCost
	dir := cfg.base.DataPath(shared, Name)
	if _, err := SetPasswordOffline(cfg, shared, "admin", "offline-pass-4"); err == nil || !strings.Contains(err.Error(), "no account store") {
		t.Errorf("without a store: err = %v, want no account store", err)
	}

	st := openTestStore(t, dir)
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	a, err := newAccounts(st, keys, revoked, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, a)
	old, err := a.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	// A running service holds the store.
	if _, err := SetPasswordOffline(cfg, shared, "admin", "offline-pass-4"); !errors.Is(err, ErrStoreBusy) {
		t.Errorf("store held: err = %v, want %v", err, ErrStoreBusy)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		want                 error
	}{
		{"weak", "admin", "weak", ErrWeakPassword},
		{"unknown", "nobody", "offline-pass-4", ErrUserNotFound},
	} {
		if _, err := SetPasswordOffline(cfg, shared, tc.user, tc.password); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := SetPasswordOffline(cfg, shared, "admin", "offline-pass-4"); err != nil {
		t.Fatal(err)
	}
	// The next process to start reads the revocation from the file, and
	// the users service from its store.
	fromFile := auth.NewRevocations()
	if err := fromFile.UseFile(shared.RevocationsPath()); err != nil {
		t.Fatal(err)
	}
	restarted, err := newAccounts(openTestStore(t, dir), newTestKeys(t, testSecret).CheckRevocations(fromFile), fromFile, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.keys.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old admin token after an offline reset: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := restarted.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: "offline-pass-4"}); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
}
