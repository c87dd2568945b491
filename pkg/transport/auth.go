package transport

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
)

// Authenticator checks a request's credentials and returns the context the
// endpoint sees, or an unauthenticated error.
type Authenticator func(r *http.Request) (context.Context, error)

// JWT accepts bearer tokens signed with keys and hands their claims to the
// endpoint (auth.FromContext).
func JWT(keys *auth.Keys) Authenticator {
	return func(r *http.Request) (context.Context, error) {
		token, err := BearerToken(r)
		if err != nil {
			return nil, err
		}
		claims, err := keys.Verify(token)
		if err != nil {
			return nil, err
		}
		return auth.WithClaims(r.Context(), claims), nil
	}
}

// StaticToken accepts exactly one bearer token, compared in constant time.
func StaticToken(want string) Authenticator {
	return func(r *http.Request) (context.Context, error) {
		got, err := BearerToken(r)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return nil, fmt.Errorf("%w: wrong token", apierr.ErrUnauthenticated)
		}
		return r.Context(), nil
	}
}

// Authenticate runs authn before anything else of the request is read, so
// an unauthenticated caller cannot make a service read a large body.
func Authenticate(logger log.Logger, authn Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, err := authn(r)
		if err != nil {
			SkipBody(w, r)
			WriteError(logger, w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SkipBody closes the connection after the answer when r has a body that
// will not be read. Otherwise net/http reads up to 256 KiB of it before it
// sends the answer, so that the connection can be reused, and a refused
// sender would be kept waiting, and would keep the connection, until the
// body timeout.
func SkipBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", fmt.Errorf("%w: missing bearer token", apierr.ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: authorization header is not a bearer token", apierr.ErrUnauthenticated)
	}
	return strings.TrimSpace(token), nil
}
