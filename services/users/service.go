// Package users keeps accounts and issues the tokens every service accepts.
package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Service is the business of accounts, free of HTTP.
type Service interface {
	Login(ctx context.Context, req LoginRequest) (Token, error)
	Me(ctx context.Context, _ endpoint.Empty) (User, error)
	CreateUser(ctx context.Context, req CreateUserRequest) (User, error)
	ListUsers(ctx context.Context, _ endpoint.Empty) (UserList, error)
	DeleteUser(ctx context.Context, req DeleteUserRequest) (endpoint.Empty, error)
	// ChangePassword sets the caller's own password, given the current
	// one (password.go).
	ChangePassword(ctx context.Context, req ChangePasswordRequest) (endpoint.Empty, error)
	// SetPassword sets any account's password; admin only.
	SetPassword(ctx context.Context, req SetPasswordRequest) (endpoint.Empty, error)
}

// LoginRequest asks for a token.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// ClientAddr is where the request came from, set by the transport
	// (never by the client's JSON): failures are budgeted per address.
	ClientAddr string `json:"-"`
}

// Token is a signed bearer token and when it stops being accepted.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// User is an account as every client sees it: never a password hash. ID
// is immutable and never reused; tokens and files refer to it.
type User struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Admin       bool      `json:"admin"`
	CreatedAt   time.Time `json:"created_at"`
}

// UserList is every account, sorted by name.
type UserList struct {
	Users []User `json:"users"`
}

// CreateUserRequest asks for a new account.
type CreateUserRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// DeleteUserRequest names the account to delete.
type DeleteUserRequest struct {
	Username string `json:"-"`
}

// The errors of the users service; clients match them with errors.Is.
var (
	ErrBadCredentials = apierr.New(apierr.CodeUnauthenticated, "users.bad_credentials", "wrong username or password")
	ErrUserNotFound   = apierr.New(apierr.CodeNotFound, "users.user_not_found", "user not found")
	ErrUserExists     = apierr.New(apierr.CodeConflict, "users.user_exists", "user already exists")
	ErrInvalidName    = apierr.New(apierr.CodeInvalidArgument, "users.invalid_name", "invalid username")
	ErrWeakPassword   = apierr.New(apierr.CodeInvalidArgument, "users.weak_password", "weak password")
	ErrDeleteSelf     = apierr.New(apierr.CodeConflict, "users.delete_self", "an admin cannot delete their own account")
)

// Limits of account fields.
const (
	MaxUsernameLen    = 64
	MinPasswordLen    = 8
	MaxPasswordLen    = 72 // bcrypt reads no further
	MaxDisplayNameLen = 128
)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// accounts implements Service over a store.
type accounts struct {
	store *store
	keys  *auth.Keys
	// revoked is the process's revocation list; a deletion lands there at
	// once, so every service refuses the account's tokens.
	revoked  *auth.Revocations
	tokenTTL time.Duration
	cost     int
	guard    *guard
	logger   log.Logger
	// events hears of every change and login; without NATS it drops them.
	events service.Publisher
	now    func() time.Time
	// dummyHash makes a login for an unknown user cost as much as one with
	// a wrong password, so timing does not tell which names exist. It is
	// made at the first such login, not at start, so a restart stays fast.
	dummyHash func() []byte
}

func newAccounts(s *store, keys *auth.Keys, revoked *auth.Revocations, tokenTTL time.Duration, cost int, limits GuardConfig) (*accounts, error) {
	dummy := sync.OnceValue(func() []byte {
		// GenerateFromPassword fails only for a cost out of range, which
		// Config.Build refused already; an empty hash still fails compare.
		h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), cost)
		return h
	})
	if revoked == nil {
		revoked = auth.NewRevocations()
	}
	a := &accounts{store: s, keys: keys, revoked: revoked, tokenTTL: tokenTTL, cost: cost, guard: newGuard(limits), logger: log.NewNopLogger(), events: service.NoPublisher{}, now: time.Now, dummyHash: dummy}
	// Deletions recorded by earlier runs are withdrawn again, so neither a
	// restart nor a storage that was down lets a deleted account back in.
	revs, err := s.revocations()
	if err != nil {
		return nil, err
	}
	for _, r := range revs {
		revoked.Revoke(r)
	}
	// The other processes of the machine read the list from its file.
	if err := revoked.Save(); err != nil {
		return nil, err
	}
	return a, nil
}

// bootstrapAdmin creates the admin account from the init config when it does
// not exist; an existing one is left as it is.
func (a *accounts) bootstrapAdmin(username, password string) (created bool, err error) {
	_, found, err := a.store.get(username)
	if err != nil || found {
		return false, err
	}
	if password == "" {
		return false, errors.New("no admin account yet and no admin password: run `ocis init` or set OCIS_USERS_ADMIN_PASSWORD")
	}
	_, err = a.create(context.Background(), CreateUserRequest{Username: username, Password: password, DisplayName: "Administrator"}, true)
	return err == nil, err
}

// bootstrapAdminHash creates the admin account from a bcrypt hash (what
// `ocis init` stores) when it does not exist. Hashing happened at init, so
// the first start pays no bcrypt cost.
func (a *accounts) bootstrapAdminHash(username, hash string) (created bool, err error) {
	_, found, err := a.store.get(username)
	if err != nil || found {
		return false, err
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return false, fmt.Errorf("admin password hash is not a bcrypt hash: %w", err)
	}
	id, err := newID()
	if err != nil {
		return false, err
	}
	r := record{
		ID:           id,
		Gen:          1,
		Username:     username,
		DisplayName:  "Administrator",
		Admin:        true,
		CreatedAt:    a.now().UTC().Truncate(time.Second),
		PasswordHash: []byte(hash),
	}
	switch err := a.store.create(r); {
	case errors.Is(err, errExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create admin %q: %w", username, err)
	}
	a.publish(context.Background(), EventUserCreated, "", r)
	return true, nil
}

func (a *accounts) Login(ctx context.Context, req LoginRequest) (Token, error) {
	// A name no account can have is refused before anything is spent or
	// remembered: it reveals nothing, as such an account cannot exist.
	if CheckUsername(req.Username) != nil {
		return Token{}, ErrBadCredentials
	}
	// Out of failures: refused before any bcrypt, so guessing cannot
	// starve the CPUs that everyone else's requests need.
	try, err := a.guard.admit(ctx, req.Username, req.ClientAddr)
	if err != nil {
		return Token{}, err
	}
	// Only a wrong password spends the reserved failures; an error of
	// ours (a busy or broken store) gives them back.
	var wrong bool
	defer func() { try.done(!wrong) }()
	r, found, err := a.store.get(req.Username)
	if err != nil {
		return Token{}, err
	}
	err = a.guard.hash(ctx, checkKeys(req.Username, req.ClientAddr), func() error {
		hash := r.PasswordHash
		if !found {
			hash = a.dummyHash()
		}
		wrong = bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || !found
		return nil
	})
	if err != nil {
		return Token{}, err
	}
	if wrong {
		return Token{}, ErrBadCredentials
	}
	token, expires, err := a.keys.Sign(r.identity(), a.tokenTTL)
	if err != nil {
		return Token{}, err
	}
	a.publish(ctx, EventUserLogin, r.ID, r)
	return Token{Token: token, ExpiresAt: expires}, nil
}

func (a *accounts) Me(ctx context.Context, _ endpoint.Empty) (User, error) {
	claims, err := auth.FromContext(ctx)
	if err != nil {
		return User{}, err
	}
	r, found, err := a.store.get(claims.Username())
	if err != nil {
		return User{}, err
	}
	// The name may since belong to another account: the id decides.
	if !found || r.ID != claims.UserID() {
		return User{}, auth.ErrTokenRevoked
	}
	return r.user(), nil
}

func (a *accounts) get(name string) (User, error) {
	r, found, err := a.store.get(name)
	if err != nil {
		return User{}, err
	}
	if !found {
		return User{}, fmt.Errorf("%w: %q", ErrUserNotFound, name)
	}
	return r.user(), nil
}

func (a *accounts) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return User{}, err
	}
	return a.create(ctx, req, false)
}

func (a *accounts) create(ctx context.Context, req CreateUserRequest, admin bool) (User, error) {
	if err := validate(req); err != nil {
		return User{}, err
	}
	var hash []byte
	err := a.guard.hash(ctx, nil, func() (err error) {
		hash, err = bcrypt.GenerateFromPassword([]byte(req.Password), a.cost)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	display := req.DisplayName
	if display == "" {
		display = req.Username
	}
	id, err := newID()
	if err != nil {
		return User{}, err
	}
	r := record{
		ID:           id,
		Gen:          1,
		Username:     req.Username,
		DisplayName:  display,
		Admin:        admin,
		CreatedAt:    a.now().UTC().Truncate(time.Second),
		PasswordHash: hash,
	}
	if err := a.store.create(r); errors.Is(err, errExists) {
		return User{}, fmt.Errorf("%w: %q", ErrUserExists, req.Username)
	} else if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", req.Username, err)
	}
	// The admin who created it, or no one at the bootstrap.
	var actor string
	if claims, err := auth.FromContext(ctx); err == nil {
		actor = claims.UserID()
	}
	a.publish(ctx, EventUserCreated, actor, r)
	return r.user(), nil
}

// CheckUsername applies the rule every username follows, the admin's from
// the config included.
func CheckUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: username is empty", ErrInvalidName)
	case len(name) > MaxUsernameLen:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, MaxUsernameLen)
	case !validName.MatchString(name):
		return fmt.Errorf("%w: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", ErrInvalidName)
	}
	return nil
}

func validate(req CreateUserRequest) error {
	if err := CheckUsername(req.Username); err != nil {
		return err
	}
	switch {
	case len(req.DisplayName) > MaxDisplayNameLen:
		return fmt.Errorf("%w: display_name is longer than %d characters", apierr.ErrInvalidArgument, MaxDisplayNameLen)
	}
	return CheckPassword(req.Username, req.Password)
}

// CheckPassword applies the rule every password follows, on every path
// that sets one: account creation, a change, a reset, `ocis init`.
func CheckPassword(username, password string) error {
	var letters, others int
	for _, r := range password {
		if unicode.IsLetter(r) {
			letters++
		} else {
			others++
		}
	}
	switch {
	case len(password) < MinPasswordLen:
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("%w: use at most %d bytes", ErrWeakPassword, MaxPasswordLen)
	case letters == 0 || others == 0:
		return fmt.Errorf("%w: mix letters with digits or symbols", ErrWeakPassword)
	case password == username:
		return fmt.Errorf("%w: must differ from the username", ErrWeakPassword)
	}
	return nil
}

func (a *accounts) ListUsers(ctx context.Context, _ endpoint.Empty) (UserList, error) {
	if _, err := auth.RequireAdmin(ctx); err != nil {
		return UserList{}, err
	}
	records, err := a.store.list()
	if err != nil {
		return UserList{}, err
	}
	list := UserList{Users: make([]User, len(records))}
	for i, r := range records {
		list.Users[i] = r.user()
	}
	return list, nil
}

func (a *accounts) DeleteUser(ctx context.Context, req DeleteUserRequest) (endpoint.Empty, error) {
	claims, err := auth.RequireAdmin(ctx)
	if err != nil {
		return endpoint.Empty{}, err
	}
	if req.Username == claims.Username() {
		return endpoint.Empty{}, ErrDeleteSelf
	}
	removed, found, err := a.store.remove(req.Username)
	if err != nil {
		return endpoint.Empty{}, err
	}
	if !found {
		return endpoint.Empty{}, fmt.Errorf("%w: %q", ErrUserNotFound, req.Username)
	}
	// Recorded with the deletion already; this tells the services of this
	// process, and the file the machine's other processes. A failed save
	// does not undo the deletion: the next start saves the list again.
	a.revoked.Revoke(auth.Revocation{Subject: removed.ID, Deleted: true})
	if err := a.revoked.Save(); err != nil {
		level.Error(a.logger).Log("msg", "share revocations with other processes", "err", err)
	}
	a.publish(ctx, EventUserDeleted, claims.UserID(), removed)
	return endpoint.Empty{}, nil
}
