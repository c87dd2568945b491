package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/log/level"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// ChangePasswordRequest changes the caller's own password.
type ChangePasswordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
	// ClientAddr is where the request came from, set by the transport: a
	// wrong current password spends that address's login failures.
	ClientAddr string `json:"-"`
}

// SetPasswordRequest sets the password of the account Username (an
// admin's reset).
type SetPasswordRequest struct {
	Username string `json:"-"`
	New      string `json:"new"`
}

// ChangePassword checks the caller's current password as a login does,
// spending the same failure budgets, so that a stolen token cannot be
// used to guess the password behind it faster than logins could; then it
// sets the new one and withdraws every token issued before.
func (a *accounts) ChangePassword(ctx context.Context, req ChangePasswordRequest) (endpoint.Empty, error) {
	claims, err := auth.FromContext(ctx)
	if err != nil {
		return endpoint.Empty{}, err
	}
	name := claims.Username()
	// The rule first: a weak new password costs no bcrypt and no failure.
	if err := CheckPassword(name, req.New); err != nil {
		return endpoint.Empty{}, err
	}
	try, err := a.guard.admit(ctx, name, req.ClientAddr)
	if err != nil {
		return endpoint.Empty{}, err
	}
	var wrong bool
	defer func() { try.done(!wrong) }()
	r, found, err := a.store.get(name)
	if err != nil {
		return endpoint.Empty{}, err
	}
	// The name may since belong to another account: the id decides.
	if !found || r.ID != claims.UserID() {
		return endpoint.Empty{}, auth.ErrTokenRevoked
	}
	err = a.guard.hash(ctx, checkKeys(name, req.ClientAddr), func() error {
		wrong = bcrypt.CompareHashAndPassword(r.PasswordHash, []byte(req.Current)) != nil
		return nil
	})
	if err != nil {
		return endpoint.Empty{}, err
	}
	if wrong {
		return endpoint.Empty{}, fmt.Errorf("%w: the current password is wrong", ErrBadCredentials)
	}
	return endpoint.Empty{}, a.setPassword(ctx, r.Username, r.ID, req.New, claims.UserID())
}

// SetPassword is an admin's reset of any account's password, their own
// included; it needs no current password.
func (a *accounts) SetPassword(ctx context.Context, req SetPasswordRequest) (endpoint.Empty, error) {
	claims, err := auth.RequireAdmin(ctx)
	if err != nil {
		return endpoint.Empty{}, err
	}
	if err := CheckUsername(req.Username); err != nil {
		return endpoint.Empty{}, fmt.Errorf("%w: %q", ErrUserNotFound, req.Username)
	}
	if err := CheckPassword(req.Username, req.New); err != nil {
		return endpoint.Empty{}, err
	}
	return endpoint.Empty{}, a.setPassword(ctx, req.Username, "", req.New, claims.UserID())
}

// setPassword hashes password, stores it as name's with the account's
// generation raised, and withdraws every token of an older generation: in
// this process at once, in the machine's other processes through the
// revocations file, and after a restart from the store. id, when set, is
// the account the caller means; a name that now belongs to another is
// not found.
func (a *accounts) setPassword(ctx context.Context, name, id, password, actor string) error {
	var hash []byte
	err := a.guard.hash(ctx, nil, func() (err error) {
		hash, err = bcrypt.GenerateFromPassword([]byte(password), a.cost)
		return err
	})
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	r, err := a.store.setPassword(name, id, hash)
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("%w: %q", ErrUserNotFound, name)
	}
	if err != nil {
		return err
	}
	a.revoked.Revoke(r.revocation())
	if err := a.revoked.Save(); err != nil {
		level.Error(a.logger).Log("msg", "share revocations with other processes", "err", err)
	}
	a.publish(ctx, EventPasswordChanged, actor, r)
	return nil
}
