package users

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// ErrStoreBusy is an account store another process holds open: a users
// service runs on it, and the password must be set through that one.
var ErrStoreBusy = errors.New("the account store is in use by another process")

// offlineWait is how long SetPasswordOffline waits for the store's lock
// before it concludes that a users service holds it.
const offlineWait = 500 * time.Millisecond

// SetPasswordOffline sets the password of account name in the store of
// the users service configured by cfg, for when no users service runs
// (`ocis users reset-password` with the server stopped, the way back in
// after a lost admin password). As a change through the API does, it
// raises the account's generation and withdraws its older tokens, in the
// store and in the revocations file every process of the machine reads.
// It publishes no event: without a running service there is no NATS
// connection to publish on.
func SetPasswordOffline(cfg *Config, shared *service.Shared, name, password string) (User, error) {
	dir := cfg.base.DataPath(shared, Name)
	path := filepath.Join(dir, "users.db")
	if _, err := os.Stat(path); err != nil {
		return User{}, fmt.Errorf("no account store at %s (has the users service ever started with this data path?): %w", path, err)
	}
	if err := CheckUsername(name); err != nil {
		return User{}, fmt.Errorf("%w: %q", ErrUserNotFound, name)
	}
	if err := CheckPassword(name, password); err != nil {
		return User{}, err
	}
	st, err := openStoreWithin(dir, offlineWait)
	if errors.Is(err, berrors.ErrTimeout) {
		return User{}, fmt.Errorf("%w: %s", ErrStoreBusy, path)
	}
	if err != nil {
		return User{}, err
	}
	defer st.close()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cfg.BcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	r, err := st.setPassword(name, "", hash)
	if errors.Is(err, errNotFound) {
		return User{}, fmt.Errorf("%w: %q", ErrUserNotFound, name)
	}
	if err != nil {
		return User{}, err
	}
	if err := shared.Revocations.UseFile(shared.RevocationsPath()); err != nil {
		return User{}, err
	}
	shared.Revocations.Revoke(r.revocation())
	if err := shared.Revocations.Save(); err != nil {
		return User{}, fmt.Errorf("password set, but the revocation of older tokens was not saved for other processes (it is in the store, so the next start of users applies it): %w", err)
	}
	return r.user(), nil
}
