package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

const (
	testSecret    = "users-test-secret-0123456789abcdef"
	adminPassword = "admin-pass-1"
	alicePassword = "alice-pass-1"
	testTokenTTL  = time.Hour
	testAdminUser = "admin"
	otherSecret   = "another-secret-0123456789abcdef!"
)

// testGuard allows more failures than any test but the guard's makes.
var testGuard = GuardConfig{Slots: 2, SlotWait: time.Second, UserBurst: 1000, AddrBurst: 1000, Refill: time.Second, Tarpit: time.Millisecond}

// testNow is the clock of the accounts under test; its nanoseconds show
// that CreatedAt is truncated to the second.
var testNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func newTestKeys(t *testing.T, secret string) *auth.Keys {
	t.Helper()
	keys, err := auth.NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// newTestAccounts returns accounts over a fresh store, hashing at the
// lowest bcrypt cost so that tests stay fast, with the clock fixed.
func newTestAccounts(t *testing.T) (*accounts, *auth.Keys) {
	t.Helper()
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	a, err := newAccounts(openTestStore(t, t.TempDir()), keys, revoked, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return testNow }
	return a, keys
}

// seed creates an admin and alice, a plain user.
func seed(t *testing.T, a *accounts) {
	t.Helper()
	if _, err := a.bootstrapAdmin(testAdminUser, adminPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := a.create(context.Background(), CreateUserRequest{Username: "alice", Password: alicePassword, DisplayName: "Alice"}, false); err != nil {
		t.Fatal(err)
	}
}

// as returns a context carrying the claims of a token really signed and
// verified for username (with the account's id when it exists), the way
// the transport hands them to the service.
func as(t *testing.T, a *accounts, username string, admin bool) context.Context {
	t.Helper()
	who := auth.Identity{ID: "no-such-id", Name: username, Gen: 1, Admin: admin}
	if r, found, err := a.store.get(username); err != nil {
		t.Fatal(err)
	} else if found {
		who.ID, who.Gen = r.ID, r.Gen
	}
	token, _, err := a.keys.Sign(who, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := a.keys.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithClaims(context.Background(), claims)
}

func TestLogin(t *testing.T) {
	a, keys := newTestAccounts(t)
	seed(t, a)

	for _, tc := range []struct {
		name      string
		req       LoginRequest
		wantErr   error
		wantAdmin bool
	}{
		{name: "admin", req: LoginRequest{Username: "admin", Password: adminPassword}, wantAdmin: true},
		{name: "plain user", req: LoginRequest{Username: "alice", Password: alicePassword}},
		{name: "wrong password", req: LoginRequest{Username: "alice", Password: adminPassword}, wantErr: ErrBadCredentials},
		{name: "password of another case", req: LoginRequest{Username: "alice", Password: strings.ToUpper(alicePassword)}, wantErr: ErrBadCredentials},
		{name: "empty password", req: LoginRequest{Username: "alice"}, wantErr: ErrBadCredentials},
		{name: "unknown user", req: LoginRequest{Username: "mallory", Password: alicePassword}, wantErr: ErrBadCredentials},
		{name: "unknown user with the dummy password", req: LoginRequest{Username: "mallory", Password: "not a password of anyone"}, wantErr: ErrBadCredentials},
		{name: "empty username", req: LoginRequest{Password: alicePassword}, wantErr: ErrBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			got, err := a.Login(context.Background(), tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				// Unknown user and wrong password read the same, so an
				// answer does not tell which names exist.
				if err.Error() != ErrBadCredentials.Error() {
					t.Errorf("err = %q, want exactly %q", err, ErrBadCredentials)
				}
				if got != (Token{}) {
					t.Errorf("got token %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}

			claims, err := keys.Verify(got.Token)
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if claims.Username() != tc.req.Username {
				t.Errorf("token subject = %q, want %q", claims.Username(), tc.req.Username)
			}
			if claims.Admin != tc.wantAdmin {
				t.Errorf("token admin = %v, want %v", claims.Admin, tc.wantAdmin)
			}
			if !claims.ExpiresAt.Time.Equal(got.ExpiresAt) {
				t.Errorf("token expires at %v, answer says %v", claims.ExpiresAt.Time, got.ExpiresAt)
			}
			earliest := before.Add(testTokenTTL).Add(-time.Second)
			latest := time.Now().Add(testTokenTTL)
			if got.ExpiresAt.Before(earliest) || got.ExpiresAt.After(latest) {
				t.Errorf("expires at %v, want between %v and %v", got.ExpiresAt, earliest, latest)
			}
			// Other keys must not accept it.
			if _, err := newTestKeys(t, otherSecret).Verify(got.Token); !errors.Is(err, apierr.ErrUnauthenticated) {
				t.Errorf("verify with other keys: err = %v, want unauthenticated", err)
			}
		})
	}
}

func TestMe(t *testing.T) {
	a, _ := newTestAccounts(t)
	seed(t, a)

	for _, tc := range []struct {
		name    string
		ctx     context.Context
		want    User
		wantErr error
	}{
		{
			name: "plain user",
			ctx:  as(t, a, "alice", false),
			want: User{Username: "alice", DisplayName: "Alice", CreatedAt: testNow.UTC().Truncate(time.Second)},
		},
		{
			name: "admin",
			ctx:  as(t, a, "admin", true),
			want: User{Username: "admin", DisplayName: "Administrator", Admin: true, CreatedAt: testNow.UTC().Truncate(time.Second)},
		},
		{name: "no claims", ctx: context.Background(), wantErr: apierr.ErrUnauthenticated},
		{name: "valid token of an unknown user", ctx: as(t, a, "ghost", false), wantErr: auth.ErrTokenRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Me(tc.ctx, endpoint.Empty{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if claims, _ := auth.FromContext(tc.ctx); err == nil && got.ID != claims.UserID() {
				t.Errorf("me has id %q, the token %q", got.ID, claims.UserID())
			}
			got.ID = ""
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCreateUserValidation(t *testing.T) {
	a, _ := newTestAccounts(t)
	ctx := as(t, a, testAdminUser, true)

	const okPassword = "s3cret-pass"
	// Every validation error is an invalid argument; each case must match
	// its own specific sentinel and not the other one.
	sentinels := []error{ErrInvalidName, ErrWeakPassword}

	for _, tc := range []struct {
		name    string
		req     CreateUserRequest
		wantErr error
	}{
		{name: "empty name", req: CreateUserRequest{Password: okPassword}, wantErr: ErrInvalidName},
		{name: "name over the limit", req: CreateUserRequest{Username: strings.Repeat("a", MaxUsernameLen+1), Password: okPassword}, wantErr: ErrInvalidName},
		{name: "name at the limit", req: CreateUserRequest{Username: strings.Repeat("b", MaxUsernameLen), Password: okPassword}},
		{name: "uppercase", req: CreateUserRequest{Username: "Alice", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "space", req: CreateUserRequest{Username: "al ice", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "slash", req: CreateUserRequest{Username: "al/ice", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "non-ascii letter", req: CreateUserRequest{Username: "alïce", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "leading dot", req: CreateUserRequest{Username: ".alice", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "leading dash", req: CreateUserRequest{Username: "-alice", Password: okPassword}, wantErr: ErrInvalidName},
		{name: "dots dashes underscores digits", req: CreateUserRequest{Username: "0a.b-c_d9", Password: okPassword}},
		{name: "display name over the limit", req: CreateUserRequest{Username: "carol", Password: okPassword, DisplayName: strings.Repeat("x", MaxDisplayNameLen+1)}, wantErr: apierr.ErrInvalidArgument},
		{name: "display name at the limit", req: CreateUserRequest{Username: "dave", Password: okPassword, DisplayName: strings.Repeat("x", MaxDisplayNameLen)}},
		{name: "short password", req: CreateUserRequest{Username: "erin", Password: "abc1234"}, wantErr: ErrWeakPassword},
		{name: "password at the minimum", req: CreateUserRequest{Username: "frank", Password: "abcd1234"}},
		{name: "password over 72 bytes", req: CreateUserRequest{Username: "grace", Password: strings.Repeat("a", 72) + "1"}, wantErr: ErrWeakPassword},
		{name: "password over 72 bytes but not runes", req: CreateUserRequest{Username: "heidi", Password: strings.Repeat("é", 36) + "1"}, wantErr: ErrWeakPassword},
		{name: "password at 72 bytes", req: CreateUserRequest{Username: "ivan", Password: strings.Repeat("a", 71) + "1"}},
		{name: "password of letters only", req: CreateUserRequest{Username: "judy", Password: "onlyletters"}, wantErr: ErrWeakPassword},
		{name: "password of digits only", req: CreateUserRequest{Username: "ken", Password: "1234567890"}, wantErr: ErrWeakPassword},
		{name: "password equal to username", req: CreateUserRequest{Username: "leo12345", Password: "leo12345"}, wantErr: ErrWeakPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.CreateUser(ctx, tc.req)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				want := User{
					Username:    tc.req.Username,
					DisplayName: tc.req.DisplayName,
					CreatedAt:   testNow.UTC().Truncate(time.Second),
				}
				if want.DisplayName == "" {
					want.DisplayName = tc.req.Username
				}
				if got.ID == "" {
					t.Errorf("created user has no id: %+v", got)
				}
				got.ID = ""
				if got != want {
					t.Errorf("got %+v, want %+v", got, want)
				}
				if _, err := a.Login(context.Background(), LoginRequest{Username: tc.req.Username, Password: tc.req.Password}); err != nil {
					t.Errorf("login as the new user: %v", err)
				}
				return
			}

			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, other := range sentinels {
				if other != tc.wantErr && errors.Is(err, other) {
					t.Errorf("err = %v also matches %v", err, other)
				}
			}
			if got := apierr.CodeOf(err); got != apierr.CodeInvalidArgument {
				t.Errorf("code = %s, want %s", got, apierr.CodeInvalidArgument)
			}
			if got != (User{}) {
				t.Errorf("got user %+v with an error", got)
			}
			if _, found, _ := a.store.get(tc.req.Username); found {
				t.Errorf("user %q was stored despite the error", tc.req.Username)
			}
		})
	}
}

func TestCreateUserDuplicate(t *testing.T) {
	a, _ := newTestAccounts(t)
	seed(t, a)
	ctx := as(t, a, testAdminUser, true)

	for _, tc := range []struct {
		name string
		req  CreateUserRequest
	}{
		{name: "plain user", req: CreateUserRequest{Username: "alice", Password: "other-pass-2"}},
		{name: "the admin", req: CreateUserRequest{Username: testAdminUser, Password: "other-pass-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.CreateUser(ctx, tc.req)
			if !errors.Is(err, ErrUserExists) {
				t.Fatalf("err = %v, want %v", err, ErrUserExists)
			}
			if !strings.Contains(err.Error(), tc.req.Username) {
				t.Errorf("err = %q, want it to name %q", err, tc.req.Username)
			}
			// The old password still works; the new one does not.
			if _, err := a.Login(context.Background(), LoginRequest{Username: tc.req.Username, Password: tc.req.Password}); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("login with the rejected password: err = %v, want %v", err, ErrBadCredentials)
			}
		})
	}
}

func TestCreateUserConcurrent(t *testing.T) {
	a, _ := newTestAccounts(t)
	ctx := as(t, a, testAdminUser, true)

	// Racing creates of one name: exactly one wins, the rest see
	// ErrUserExists, and the winner's password is the stored one.
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := a.CreateUser(ctx, CreateUserRequest{Username: "bob", Password: fmt.Sprintf("bob-pass-%d", i)})
			errs <- err
		}()
	}
	var ok, exists int
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrUserExists):
			exists++
		default:
			t.Errorf("create: %v", err)
		}
	}
	if ok != 1 || exists != n-1 {
		t.Errorf("got %d created and %d exists, want 1 and %d", ok, exists, n-1)
	}
	var logins int
	for i := range n {
		if _, err := a.Login(context.Background(), LoginRequest{Username: "bob", Password: fmt.Sprintf("bob-pass-%d", i)}); err == nil {
			logins++
		}
	}
	if logins != 1 {
		t.Errorf("%d passwords log bob in, want exactly 1", logins)
	}
}

func TestAdminOnly(t *testing.T) {
	a, _ := newTestAccounts(t)
	seed(t, a)

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{name: "create", call: func(ctx context.Context) error {
			_, err := a.CreateUser(ctx, CreateUserRequest{Username: "bob", Password: "bob-pass-1"})
			return err
		}},
		{name: "list", call: func(ctx context.Context) error {
			_, err := a.ListUsers(ctx, endpoint.Empty{})
			return err
		}},
		{name: "delete", call: func(ctx context.Context) error {
			_, err := a.DeleteUser(ctx, DeleteUserRequest{Username: "alice"})
			return err
		}},
	}
	callers := []struct {
		name    string
		ctx     context.Context
		wantErr error
	}{
		{name: "plain user", ctx: as(t, a, "alice", false), wantErr: apierr.ErrPermissionDenied},
		{name: "plain user naming the admin", ctx: as(t, a, testAdminUser, false), wantErr: apierr.ErrPermissionDenied},
		{name: "no claims", ctx: context.Background(), wantErr: apierr.ErrUnauthenticated},
	}
	for _, c := range calls {
		for _, caller := range callers {
			t.Run(c.name+"/"+caller.name, func(t *testing.T) {
				if err := c.call(caller.ctx); !errors.Is(err, caller.wantErr) {
					t.Errorf("err = %v, want %v", err, caller.wantErr)
				}
			})
		}
	}

	// Nothing was created or deleted by the refused calls.
	got, err := a.store.list()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin", "alice"}; !reflect.DeepEqual(names(got), want) {
		t.Errorf("users = %v, want %v", names(got), want)
	}
}

func TestListUsers(t *testing.T) {
	a, _ := newTestAccounts(t)
	ctx := as(t, a, testAdminUser, true)

	t.Run("empty", func(t *testing.T) {
		got, err := a.ListUsers(ctx, endpoint.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		// An empty list is [] on the wire, never null.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"users":[]}`; string(b) != want {
			t.Errorf("got %s, want %s", b, want)
		}
	})

	seed(t, a)
	for _, name := range []string{"zoe", "bob"} {
		if _, err := a.CreateUser(ctx, CreateUserRequest{Username: name, Password: name + "-pass-1"}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("sorted", func(t *testing.T) {
		got, err := a.ListUsers(ctx, endpoint.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		created := testNow.UTC().Truncate(time.Second)
		for i := range got.Users {
			if got.Users[i].ID == "" {
				t.Errorf("listed user has no id: %+v", got.Users[i])
			}
			got.Users[i].ID = ""
		}
		want := UserList{Users: []User{
			{Username: "admin", DisplayName: "Administrator", Admin: true, CreatedAt: created},
			{Username: "alice", DisplayName: "Alice", CreatedAt: created},
			{Username: "bob", DisplayName: "bob", CreatedAt: created},
			{Username: "zoe", DisplayName: "zoe", CreatedAt: created},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

func TestDeleteUser(t *testing.T) {
	a, _ := newTestAccounts(t)
	seed(t, a)
	admin := as(t, a, testAdminUser, true)
	if _, err := a.CreateUser(admin, CreateUserRequest{Username: "root", Password: "root-pass-1"}); err != nil {
		t.Fatal(err)
	}

	// The steps run in order on one store; each says what is left.
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		username string
		wantErr  error
		wantLeft []string
	}{
		{name: "admin deletes self", ctx: admin, username: testAdminUser, wantErr: ErrDeleteSelf, wantLeft: []string{"admin", "alice", "root"}},
		{name: "unknown user", ctx: admin, username: "mallory", wantErr: ErrUserNotFound, wantLeft: []string{"admin", "alice", "root"}},
		{name: "empty name", ctx: admin, username: "", wantErr: ErrUserNotFound, wantLeft: []string{"admin", "alice", "root"}},
		{name: "plain user", ctx: admin, username: "alice", wantLeft: []string{"admin", "root"}},
		{name: "plain user again", ctx: admin, username: "alice", wantErr: ErrUserNotFound, wantLeft: []string{"admin", "root"}},
		{name: "another admin's token deletes the first", ctx: as(t, a, "root", true), username: testAdminUser, wantLeft: []string{"root"}},
	} {
		_, err := a.DeleteUser(tc.ctx, DeleteUserRequest{Username: tc.username})
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
		got, err := a.store.list()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names(got), tc.wantLeft) {
			t.Errorf("%s: users = %v, want %v", tc.name, names(got), tc.wantLeft)
		}
	}

	// A deleted user can no longer log in.
	if _, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword}); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("login of a deleted user: err = %v, want %v", err, ErrBadCredentials)
	}
}

func TestBootstrapAdmin(t *testing.T) {
	a, keys := newTestAccounts(t)

	// The steps run in order on one store.
	for _, tc := range []struct {
		name        string
		password    string
		wantCreated bool
		wantErr     bool
	}{
		{name: "no admin and no password", password: "", wantErr: true},
		{name: "weak password", password: "password", wantErr: true},
		{name: "first start", password: adminPassword, wantCreated: true},
		{name: "second start with another password", password: "changed-pass-9"},
		{name: "second start with no password", password: ""},
	} {
		created, err := a.bootstrapAdmin(testAdminUser, tc.password)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if created != tc.wantCreated {
			t.Errorf("%s: created = %v, want %v", tc.name, created, tc.wantCreated)
		}
	}

	// Exactly one admin, with the first password.
	got, err := a.store.list()
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{Username: testAdminUser, DisplayName: "Administrator", Admin: true, CreatedAt: testNow.UTC().Truncate(time.Second)}}
	if len(got) != 1 || got[0].ID == "" || got[0].Gen != 1 {
		t.Fatalf("users = %+v, want one admin with an id at generation 1", got)
	}
	got[0].ID = ""
	if got[0].user() != want[0] {
		t.Fatalf("users = %+v, want %+v", got, want)
	}
	token, err := a.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: adminPassword})
	if err != nil {
		t.Fatalf("login with the first password: %v", err)
	}
	claims, err := keys.Verify(token.Token)
	if err != nil || !claims.Admin {
		t.Errorf("admin token: claims = %+v, err = %v, want admin", claims, err)
	}
	if _, err := a.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: "changed-pass-9"}); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("login with the later password: err = %v, want %v", err, ErrBadCredentials)
	}
}

func TestBootstrapAdminErrorSaysWhatToDo(t *testing.T) {
	a, _ := newTestAccounts(t)
	_, err := a.bootstrapAdmin(testAdminUser, "")
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"ocis init", "OCIS_USERS_ADMIN_PASSWORD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to mention %q", err, want)
		}
	}
}

func TestUserJSONHasNoPassword(t *testing.T) {
	a, _ := newTestAccounts(t)
	seed(t, a)
	r, _, err := a.store.get("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PasswordHash) == 0 {
		t.Fatal("stored record has no hash; the test would prove nothing")
	}
	list, err := a.ListUsers(as(t, a, testAdminUser, true), endpoint.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	me, err := a.Me(as(t, a, "alice", false), endpoint.Empty{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		user User
	}{
		{name: "record", user: r.user()},
		{name: "me", user: me},
		{name: "listed", user: list.Users[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.user)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range fields {
				got = append(got, k)
			}
			slices.Sort(got)
			if want := []string{"admin", "created_at", "display_name", "id", "username"}; !slices.Equal(got, want) {
				t.Errorf("keys = %v, want %v", got, want)
			}
			if strings.Contains(strings.ToLower(string(b)), "password") || strings.Contains(string(b), string(r.PasswordHash)) {
				t.Errorf("user JSON %s carries a password", b)
			}
		})
	}
}

func TestBootstrapAdminHash(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		hash        string
		wantCreated bool
		wantErr     bool
	}{
		{"valid hash", string(hash), true, false},
		{"not a bcrypt hash", "plain-text", false, true},
		{"empty", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newTestAccounts(t)
			created, err := a.bootstrapAdminHash(testAdminUser, tt.hash)
			if created != tt.wantCreated || (err != nil) != tt.wantErr {
				t.Fatalf("created = %v, err = %v; want %v, error %v", created, err, tt.wantCreated, tt.wantErr)
			}
			if !tt.wantCreated {
				return
			}
			if _, err := a.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: adminPassword}); err != nil {
				t.Errorf("login with the hashed password: %v", err)
			}
			me, _ := a.get(testAdminUser)
			if !me.Admin {
				t.Error("bootstrapped account is not an admin")
			}
			again, err := a.bootstrapAdminHash(testAdminUser, tt.hash)
			if again || err != nil {
				t.Errorf("second bootstrap: created %v, %v; want a no-op", again, err)
			}
		})
	}
}

// TestDeleteRevokesTokens shows that deleting an account withdraws its
// tokens at once, that a new account of the same name is another identity
// whose tokens work while the old ones stay refused, and that a restart
// reloads the revocations from the store.
func TestDeleteRevokesTokens(t *testing.T) {
	dir := t.TempDir()
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	st := openTestStore(t, dir)
	a, err := newAccounts(st, keys, revoked, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, a)
	admin := as(t, a, testAdminUser, true)
	login := func() Token {
		t.Helper()
		tok, err := a.Login(context.Background(), LoginRequest{Username: "alice", Password: alicePassword})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	old := login()
	oldClaims, err := keys.Verify(old.Token)
	if err != nil {
		t.Fatal(err)
	}

	var deleted []string
	cancel := revoked.Subscribe(func(r auth.Revocation) {
		if r.Deleted {
			deleted = append(deleted, r.Subject)
		}
	})
	defer cancel()
	if _, err := a.DeleteUser(admin, DeleteUserRequest{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old token after delete: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if want := []string{oldClaims.UserID()}; !slices.Equal(deleted, want) {
		t.Errorf("subscribers told of %v, want %v", deleted, want)
	}

	if _, err := a.CreateUser(admin, CreateUserRequest{Username: "alice", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	fresh, err := keys.Verify(login().Token)
	if err != nil {
		t.Fatalf("token of the new alice: %v", err)
	}
	if fresh.UserID() == oldClaims.UserID() {
		t.Fatalf("the new alice reuses the old id %q", fresh.UserID())
	}
	if _, err := keys.Verify(old.Token); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("old token after the name was taken again: err = %v, want %v", err, auth.ErrTokenRevoked)
	}

	// A restart of the process starts with an empty list; the store fills it.
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	again := auth.NewRevocations()
	if _, err := newAccounts(openTestStore(t, dir), newTestKeys(t, testSecret), again, testTokenTTL, bcrypt.MinCost, testGuard); err != nil {
		t.Fatal(err)
	}
	if !again.Revoked(oldClaims.UserID(), oldClaims.Gen) {
		t.Error("after a restart the deleted account's tokens are accepted again")
	}
	if again.Revoked(fresh.UserID(), fresh.Gen) {
		t.Error("after a restart the new account's tokens are refused")
	}
}
