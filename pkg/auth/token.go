// Package auth signs and verifies the bearer tokens every service accepts:
// HS256 JWTs under the shared secret (OCIS_JWT_SECRET).
package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// Claims is what a token says about its bearer. The subject is the
// account's immutable id, never its name: a name can be deleted and taken
// again, an id is never reused, so nothing owned by an id passes to a new
// account of the same name.
type Claims struct {
	// Name is the account's username when the token was issued.
	Name string `json:"name"`
	// Gen is the account's generation when the token was issued; a
	// revocation raises the lowest generation still accepted.
	Gen   uint64 `json:"gen"`
	Admin bool   `json:"admin,omitempty"`
	jwt.RegisteredClaims
}

// UserID is the immutable id of the account the token was issued to.
func (c *Claims) UserID() string { return c.Subject }

// Username is the account's name when the token was issued.
func (c *Claims) Username() string { return c.Name }

// Identity is who a token is issued to.
type Identity struct {
	ID    string
	Name  string
	Gen   uint64
	Admin bool
}

// Errors of token checks that clients may want to tell apart.
var (
	ErrTokenExpired = apierr.New(apierr.CodeUnauthenticated, "auth.token_expired", "token expired")
	ErrTokenRevoked = apierr.New(apierr.CodeUnauthenticated, "auth.token_revoked", "token revoked")
)

const issuer = "ocis"

// Keys signs and verifies tokens with one shared secret.
type Keys struct {
	secret  []byte
	now     func() time.Time
	revoked *Revocations
	cache   *verified
}

// NewKeys returns keys for secret; an empty secret is refused because it
// would make every token forgeable.
func NewKeys(secret string) (*Keys, error) {
	if len(secret) < 16 {
		return nil, errors.New("jwt secret must be at least 16 bytes")
	}
	return &Keys{secret: []byte(secret), now: time.Now, cache: newVerified(DefaultCacheSize)}, nil
}

// CheckRevocations makes Verify refuse tokens that r lists as revoked. Every
// service of a process shares one list, so a revocation reaches them all at
// once.
func (k *Keys) CheckRevocations(r *Revocations) *Keys {
	k.revoked = r
	return k
}

// Sign issues a token for who that expires after ttl.
func (k *Keys) Sign(who Identity, ttl time.Duration) (token string, expires time.Time, err error) {
	now := k.now()
	expires = now.Add(ttl).Truncate(time.Second)
	claims := Claims{
		Name:  who.Name,
		Gen:   who.Gen,
		Admin: who.Admin,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   who.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return token, expires, nil
}

// Verify checks a token's signature, algorithm, issuer, expiry and, when
// the keys check revocations, that it was not revoked. Every failure is an
// unauthenticated error whose message says which check failed.
//
// A token that passed once is remembered (a bounded cache keyed by the
// token itself), and presented again skips the signature and parsing; its
// expiry and its revocation are checked on every call all the same. The
// claims returned for a remembered token are shared between calls: read
// them, never modify them.
func (k *Keys) Verify(token string) (*Claims, error) {
	if c := k.cache.get(token); c != nil {
		// The cached claims passed every check but the two that depend
		// on when they are asked.
		if !k.now().Before(c.ExpiresAt.Time) {
			k.cache.drop(token)
			return nil, ErrTokenExpired
		}
		if k.revoked.Revoked(c.Subject, c.Gen) {
			return nil, ErrTokenRevoked
		}
		return c, nil
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return k.secret, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(k.now),
	)
	switch {
	case err == nil && (claims.Subject == "" || claims.Name == ""):
		return nil, fmt.Errorf("%w: token has no subject", apierr.ErrUnauthenticated)
	case err == nil && k.revoked.Revoked(claims.Subject, claims.Gen):
		return nil, ErrTokenRevoked
	case err == nil:
		k.cache.put(token, &claims, k.now())
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fmt.Errorf("%w: token signature invalid", apierr.ErrUnauthenticated)
	default:
		return nil, fmt.Errorf("%w: token invalid", apierr.ErrUnauthenticated)
	}
}

type claimsKey struct{}

// WithClaims returns ctx carrying the verified claims of the caller.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the caller's claims, or an unauthenticated error when
// the request was never authenticated.
func FromContext(ctx context.Context) (*Claims, error) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	if !ok {
		return nil, fmt.Errorf("%w: no token", apierr.ErrUnauthenticated)
	}
	return c, nil
}

// RequireAdmin returns the caller's claims when the caller is an admin.
func RequireAdmin(ctx context.Context) (*Claims, error) {
	c, err := FromContext(ctx)
	if err != nil {
		return nil, err
	}
	if !c.Admin {
		return nil, fmt.Errorf("%w: admin only", apierr.ErrPermissionDenied)
	}
	return c, nil
}
