package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

const testSecret = "test-secret-of-32-bytes-or-so!!!"

// start is the fixed instant the tests' clock begins at.
var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source for Keys.now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestKeys(t *testing.T, secret string, c *clock) *Keys {
	t.Helper()
	k, err := NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	k.now = c.now
	return k
}

func TestNewKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secret  string
		wantErr bool
	}{
		{name: "empty secret", secret: "", wantErr: true},
		{name: "short secret", secret: "fifteen-bytes!!", wantErr: true},
		{name: "sixteen bytes", secret: "sixteen-bytes!!!"},
		{name: "long secret", secret: testSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewKeys(tc.secret)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("NewKeys(%q) err = %v, want error %t", tc.secret, err, tc.wantErr)
			}
			if tc.wantErr && k != nil {
				t.Errorf("NewKeys(%q) returned keys with its error", tc.secret)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		username string
		admin    bool
		ttl      time.Duration
	}{
		{name: "user", username: "alice", ttl: time.Hour},
		{name: "admin", username: "admin", admin: true, ttl: 24 * time.Hour},
		{name: "unusual name", username: "ünïcödé user@example.org", ttl: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: start}
			k := newTestKeys(t, testSecret, c)
			token, expires, err := k.Sign(Identity{ID: tc.username, Name: tc.username, Admin: tc.admin}, tc.ttl)
			if err != nil {
				t.Fatal(err)
			}
			if want := start.Add(tc.ttl); !expires.Equal(want) {
				t.Errorf("expires = %v, want %v", expires, want)
			}
			got, err := k.Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Username() != tc.username || got.Admin != tc.admin {
				t.Errorf("claims = (%q, admin %t), want (%q, admin %t)", got.Username(), got.Admin, tc.username, tc.admin)
			}
			if got.Issuer != issuer {
				t.Errorf("issuer = %q, want %q", got.Issuer, issuer)
			}
			if !got.ExpiresAt.Time.Equal(expires) {
				t.Errorf("exp = %v, want %v", got.ExpiresAt.Time, expires)
			}
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		wantErr bool
	}{
		{name: "fresh", elapsed: 0},
		{name: "just before expiry", elapsed: time.Hour - time.Second},
		{name: "at expiry", elapsed: time.Hour, wantErr: true},
		{name: "long after", elapsed: 48 * time.Hour, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: start}
			k := newTestKeys(t, testSecret, c)
			token, _, err := k.Sign(Identity{ID: "alice", Name: "alice"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c.t = start.Add(tc.elapsed)
			_, err = k.Verify(token)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Verify after %s: %v", tc.elapsed, err)
				}
				return
			}
			if !errors.Is(err, apierr.ErrUnauthenticated) || !strings.Contains(err.Error(), "token expired") {
				t.Errorf("Verify after %s: err = %v, want unauthenticated \"token expired\"", tc.elapsed, err)
			}
		})
	}
}

// encode builds a token from raw parts, for tokens Sign would never make.
func encode(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	token, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestVerifyRefuses(t *testing.T) {
	c := &clock{t: start}
	k := newTestKeys(t, testSecret, c)
	valid := func() Claims {
		return Claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   "alice",
			IssuedAt:  jwt.NewNumericDate(start),
			ExpiresAt: jwt.NewNumericDate(start.Add(time.Hour)),
		}}
	}
	// promoted claims a user's own token into an admin one without the
	// secret, by swapping the payload and keeping the signature.
	promoted := func() string {
		token, _, err := k.Sign(Identity{ID: "alice", Name: "alice"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(token, ".")
		admin := valid()
		admin.Admin = true
		forged := encode(t, jwt.SigningMethodHS256, []byte("whatever-secret-of-any-length"), admin)
		return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	}

	for _, tc := range []struct {
		name        string
		token       string
		wantMessage string
	}{
		{
			name:        "other secret",
			token:       encode(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), valid()),
			wantMessage: "token signature invalid",
		},
		{name: "payload swapped", token: promoted(), wantMessage: "token signature invalid"},
		{
			name:  "alg none",
			token: encode(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		},
		{
			name:  "alg none with the right claims and an empty signature",
			token: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(encode(t, jwt.SigningMethodHS256, []byte(testSecret), valid()), ".")[1] + ".",
		},
		{
			// HS512 under the same secret is a valid signature, but only
			// HS256 is accepted.
			name:  "other HMAC algorithm",
			token: encode(t, jwt.SigningMethodHS512, []byte(testSecret), valid()),
		},
		{
			name: "other issuer",
			token: func() string {
				cl := valid()
				cl.Issuer = "someone-else"
				return encode(t, jwt.SigningMethodHS256, []byte(testSecret), cl)
			}(),
		},
		{
			name: "no expiry",
			token: func() string {
				cl := valid()
				cl.ExpiresAt = nil
				return encode(t, jwt.SigningMethodHS256, []byte(testSecret), cl)
			}(),
		},
		{
			name: "no subject",
			token: func() string {
				cl := valid()
				cl.Subject = ""
				return encode(t, jwt.SigningMethodHS256, []byte(testSecret), cl)
			}(),
			wantMessage: "token has no subject",
		},
		{name: "empty", token: ""},
		{name: "garbage", token: "not.a.token"},
		{name: "not base64", token: "!!!.???.***"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := k.Verify(tc.token)
			if err == nil {
				t.Fatalf("Verify accepted the token, claims %+v", got)
			}
			if !errors.Is(err, apierr.ErrUnauthenticated) {
				t.Errorf("err = %v, want one that is apierr.ErrUnauthenticated", err)
			}
			if got != nil {
				t.Errorf("claims = %+v, want nil with an error", got)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("err = %q, want it to contain %q", err, tc.wantMessage)
			}
		})
	}
}

func TestAlgNoneHeader(t *testing.T) {
	// Guard the hand-built token above: its header really says "none".
	header, err := base64.RawURLEncoding.DecodeString("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"alg":"none","typ":"JWT"}`; string(header) != want {
		t.Fatalf("header = %s, want %s", header, want)
	}
}

func TestRequireAdmin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		wantErr error
	}{
		{name: "admin", ctx: WithClaims(context.Background(), &Claims{Admin: true, RegisteredClaims: jwt.RegisteredClaims{Subject: "root"}})},
		{name: "not an admin", ctx: WithClaims(context.Background(), &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice"}}), wantErr: apierr.ErrPermissionDenied},
		{name: "not authenticated", ctx: context.Background(), wantErr: apierr.ErrUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RequireAdmin(tc.ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && (got == nil || !got.Admin) {
				t.Errorf("claims = %+v, want the admin's", got)
			}
			if tc.wantErr != nil && got != nil {
				t.Errorf("claims = %+v, want nil with an error", got)
			}
		})
	}
}

func TestFromContext(t *testing.T) {
	want := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice"}}
	got, err := FromContext(WithClaims(context.Background(), want))
	if err != nil || got != want {
		t.Errorf("FromContext = (%v, %v), want (%v, nil)", got, err, want)
	}
	if _, err := FromContext(context.Background()); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Errorf("FromContext without claims: err = %v, want unauthenticated", err)
	}
}
