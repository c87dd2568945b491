package users

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// newTestServer builds the whole stack in process, the way Run does but
// with a nop logger and a private registry, and returns a client of it.
func newTestServer(t *testing.T) (*Client, *httptest.Server) {
	t.Helper()
	revoked := auth.NewRevocations()
	keys := newTestKeys(t, testSecret).CheckRevocations(revoked)
	svc, err := newAccounts(openTestStore(t, t.TempDir()), keys, revoked, testTokenTTL, bcrypt.MinCost, testGuard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.bootstrapAdmin(testAdminUser, adminPassword); err != nil {
		t.Fatal(err)
	}
	base := service.NewBase(Descriptor(), true)
	endpoints := MakeEndpoints(svc, service.Chain(log.NewNopLogger(), prometheus.NewRegistry(), Name, &base))
	srv := httptest.NewServer(NewHTTPHandler(endpoints, log.NewNopLogger(), keys, transport.DefaultTrustedProxies()))
	// Registered after the store's cleanup, so it runs first: the server
	// stops before the store closes under it.
	t.Cleanup(srv.Close)
	client, err := NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return client, srv
}

// loginToken logs username in through the client and returns the token.
func loginToken(t *testing.T, c *Client, username, password string) string {
	t.Helper()
	token, err := c.Login(context.Background(), LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return token.Token
}

// login returns a context in which the client sends the token of username.
func login(t *testing.T, c *Client, username, password string) context.Context {
	t.Helper()
	return transport.WithBearer(context.Background(), loginToken(t, c, username, password))
}

func listNames(t *testing.T, c *Client, ctx context.Context) []string {
	t.Helper()
	list, err := c.ListUsers(ctx, endpoint.Empty{})
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	out := []string{}
	for _, u := range list.Users {
		out = append(out, u.Username)
	}
	return out
}

func TestHTTPClientFlow(t *testing.T) {
	c, _ := newTestServer(t)
	ctx := context.Background()
	admin := login(t, c, testAdminUser, adminPassword)

	me, err := c.Me(admin, endpoint.Empty{})
	if err != nil {
		t.Fatalf("me: %v", err)
	}
	if me.Username != testAdminUser || !me.Admin || me.DisplayName != "Administrator" {
		t.Errorf("me = %+v, want the admin", me)
	}

	created, err := c.CreateUser(admin, CreateUserRequest{Username: "alice", Password: alicePassword, DisplayName: "Alice"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Username != "alice" || created.DisplayName != "Alice" || created.Admin || created.CreatedAt.IsZero() {
		t.Errorf("created = %+v, want alice", created)
	}

	if got, want := listNames(t, c, admin), []string{"admin", "alice"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list = %v, want %v", got, want)
	}

	alice := login(t, c, "alice", alicePassword)
	me, err = c.Me(alice, endpoint.Empty{})
	if err != nil {
		t.Fatalf("me as alice: %v", err)
	}
	if me != created {
		t.Errorf("me as alice = %+v, want %+v", me, created)
	}

	if _, err := c.DeleteUser(admin, DeleteUserRequest{Username: "alice"}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got, want := listNames(t, c, admin), []string{"admin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list after delete = %v, want %v", got, want)
	}
	// The deletion revokes the account's tokens at once.
	if _, err := c.Me(alice, endpoint.Empty{}); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("me of a deleted user: err = %v, want %v", err, auth.ErrTokenRevoked)
	}
	if _, err := c.Login(ctx, LoginRequest{Username: "alice", Password: alicePassword}); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("login of a deleted user: err = %v, want %v", err, ErrBadCredentials)
	}
}

func TestHTTPErrorsKeepTheirSentinels(t *testing.T) {
	c, _ := newTestServer(t)
	admin := login(t, c, testAdminUser, adminPassword)
	if _, err := c.CreateUser(admin, CreateUserRequest{Username: "alice", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	alice := login(t, c, "alice", alicePassword)
	anonymous := context.Background()
	forged := transport.WithBearer(context.Background(), "not.a.token")

	for _, tc := range []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{name: "wrong password", wantErr: ErrBadCredentials, call: func() error {
			_, err := c.Login(anonymous, LoginRequest{Username: "alice", Password: "wrong-pass-1"})
			return err
		}},
		{name: "unknown user", wantErr: ErrBadCredentials, call: func() error {
			_, err := c.Login(anonymous, LoginRequest{Username: "mallory", Password: "wrong-pass-1"})
			return err
		}},
		{name: "duplicate", wantErr: ErrUserExists, call: func() error {
			_, err := c.CreateUser(admin, CreateUserRequest{Username: "alice", Password: "other-pass-2"})
			return err
		}},
		{name: "invalid name", wantErr: ErrInvalidName, call: func() error {
			_, err := c.CreateUser(admin, CreateUserRequest{Username: "Bob", Password: "bob-pass-1"})
			return err
		}},
		{name: "weak password", wantErr: ErrWeakPassword, call: func() error {
			_, err := c.CreateUser(admin, CreateUserRequest{Username: "bob", Password: "short1"})
			return err
		}},
		{name: "display name too long", wantErr: apierr.ErrInvalidArgument, call: func() error {
			_, err := c.CreateUser(admin, CreateUserRequest{Username: "bob", Password: "bob-pass-1", DisplayName: strings.Repeat("x", MaxDisplayNameLen+1)})
			return err
		}},
		{name: "create as plain user", wantErr: apierr.ErrPermissionDenied, call: func() error {
			_, err := c.CreateUser(alice, CreateUserRequest{Username: "bob", Password: "bob-pass-1"})
			return err
		}},
		{name: "list as plain user", wantErr: apierr.ErrPermissionDenied, call: func() error {
			_, err := c.ListUsers(alice, endpoint.Empty{})
			return err
		}},
		{name: "delete as plain user", wantErr: apierr.ErrPermissionDenied, call: func() error {
			_, err := c.DeleteUser(alice, DeleteUserRequest{Username: testAdminUser})
			return err
		}},
		{name: "delete self", wantErr: ErrDeleteSelf, call: func() error {
			_, err := c.DeleteUser(admin, DeleteUserRequest{Username: testAdminUser})
			return err
		}},
		{name: "delete unknown", wantErr: ErrUserNotFound, call: func() error {
			_, err := c.DeleteUser(admin, DeleteUserRequest{Username: "mallory"})
			return err
		}},
		{name: "me without a token", wantErr: apierr.ErrUnauthenticated, call: func() error {
			_, err := c.Me(anonymous, endpoint.Empty{})
			return err
		}},
		{name: "list with a forged token", wantErr: apierr.ErrUnauthenticated, call: func() error {
			_, err := c.ListUsers(forged, endpoint.Empty{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			// The sentinel survives as the one wire type.
			var wire *apierr.Error
			if !errors.As(err, &wire) {
				t.Errorf("err = %T, want *apierr.Error", err)
			}
		})
	}

	// None of the refused calls changed anything.
	if got, want := listNames(t, c, admin), []string{"admin", "alice"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list = %v, want %v", got, want)
	}
}

func TestHTTPRoutes(t *testing.T) {
	c, srv := newTestServer(t)
	adminToken := loginToken(t, c, testAdminUser, adminPassword)

	for _, tc := range []struct {
		name       string
		method     string
		path       string
		body       string
		token      string
		wantStatus int
		wantCode   apierr.Code
	}{
		{name: "login", method: http.MethodPost, path: "/api/v1/tokens", body: `{"username":"admin","password":"` + adminPassword + `"}`, wantStatus: http.StatusOK},
		{name: "login wrong", method: http.MethodPost, path: "/api/v1/tokens", body: `{"username":"admin","password":"nope-1234"}`, wantStatus: http.StatusUnauthorized, wantCode: apierr.CodeUnauthenticated},
		{name: "login unknown field", method: http.MethodPost, path: "/api/v1/tokens", body: `{"username":"admin","password":"x","otp":1}`, wantStatus: http.StatusBadRequest, wantCode: apierr.CodeInvalidArgument},
		{name: "me", method: http.MethodGet, path: "/api/v1/users/me", token: adminToken, wantStatus: http.StatusOK},
		{name: "list without token", method: http.MethodGet, path: "/api/v1/users", wantStatus: http.StatusUnauthorized, wantCode: apierr.CodeUnauthenticated},
		{name: "create", method: http.MethodPost, path: "/api/v1/users", token: adminToken, body: `{"username":"bob","password":"bob-pass-1"}`, wantStatus: http.StatusCreated},
		{name: "create without token", method: http.MethodPost, path: "/api/v1/users", body: `{"username":"eve","password":"eve-pass-1"}`, wantStatus: http.StatusUnauthorized, wantCode: apierr.CodeUnauthenticated},
		{name: "duplicate", method: http.MethodPost, path: "/api/v1/users", token: adminToken, body: `{"username":"bob","password":"bob-pass-1"}`, wantStatus: http.StatusConflict, wantCode: apierr.CodeConflict},
		{name: "delete", method: http.MethodDelete, path: "/api/v1/users/bob", token: adminToken, wantStatus: http.StatusNoContent},
		{name: "wrong method", method: http.MethodPut, path: "/api/v1/users", token: adminToken, body: `{}`, wantStatus: http.StatusMethodNotAllowed, wantCode: apierr.CodeMethodNotAllowed},
		{name: "unknown path", method: http.MethodGet, path: "/api/v1/nothing", token: adminToken, wantStatus: http.StatusNotFound, wantCode: apierr.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantCode == "" {
				return
			}
			var got struct {
				Error struct {
					Code apierr.Code `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("error answer is not JSON: %v: %s", err, body)
			}
			if got.Error.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", got.Error.Code, tc.wantCode)
			}
		})
	}
}

func TestHTTPDeleteEscapedName(t *testing.T) {
	// Neighbours that a wrongly split or decoded name could hit instead.
	neighbours := []string{"a", "a.b", "b-c_d", "c_d"}

	for _, tc := range []struct {
		name    string
		path    string // empty: delete through the client
		wantErr error
	}{
		{name: "through the client", path: ""},
		{name: "plain path", path: "/api/v1/users/a.b-c_d"},
		{name: "every punctuation escaped", path: "/api/v1/users/a%2Eb%2Dc%5Fd"},
		{name: "every byte escaped", path: "/api/v1/users/%61%2E%62%2D%63%5F%64"},
		{name: "escaped slash stays in the segment", path: "/api/v1/users/a.b%2Fc_d", wantErr: ErrUserNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newTestServer(t)
			admin := login(t, c, testAdminUser, adminPassword)
			for _, name := range append([]string{"a.b-c_d"}, neighbours...) {
				if _, err := c.CreateUser(admin, CreateUserRequest{Username: name, Password: "pass-word-1"}); err != nil {
					t.Fatal(err)
				}
			}

			var err error
			if tc.path == "" {
				_, err = c.DeleteUser(admin, DeleteUserRequest{Username: "a.b-c_d"})
			} else {
				err = rawDelete(t, srv, loginToken(t, c, testAdminUser, adminPassword), tc.path)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}

			want := []string{"a", "a.b", "admin", "b-c_d", "c_d"}
			if tc.wantErr != nil {
				want = []string{"a", "a.b", "a.b-c_d", "admin", "b-c_d", "c_d"}
			}
			if got := listNames(t, c, admin); !reflect.DeepEqual(got, want) {
				t.Errorf("users = %v, want %v", got, want)
			}
		})
	}
}

// rawDelete sends DELETE to path exactly as written, bypassing the client's
// own escaping, and decodes the answer the way the client does.
func rawDelete(t *testing.T, srv *httptest.Server, token, path string) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return transport.ReadError(resp)
}

// The token a login returns expires after the configured TTL, measured
// across HTTP too.
func TestHTTPLoginExpiry(t *testing.T) {
	c, _ := newTestServer(t)
	before := time.Now()
	got, err := c.Login(context.Background(), LoginRequest{Username: testAdminUser, Password: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	earliest := before.Add(testTokenTTL).Add(-time.Second)
	latest := time.Now().Add(testTokenTTL)
	if got.ExpiresAt.Before(earliest) || got.ExpiresAt.After(latest) {
		t.Errorf("expires at %v, want between %v and %v", got.ExpiresAt, earliest, latest)
	}
}
