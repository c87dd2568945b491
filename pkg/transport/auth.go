package transport

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Authenticate verifies the bearer token before anything else of the request
// is read, and hands the verified claims to the endpoint through the context.
// Checking it at the HTTP layer means an unauthenticated caller cannot make a
// service read a large body.
func Authenticate(logger log.Logger, keys *auth.Keys, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := BearerToken(r)
		if err == nil {
			var claims *auth.Claims
			if claims, err = keys.Verify(token); err == nil {
				next.ServeHTTP(w, r.WithContext(auth.WithClaims(r.Context(), claims)))
				return
			}
		}
		WriteError(logger, w, err)
	})
}

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", fmt.Errorf("%w: missing bearer token", endpoint.ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: authorization header is not a bearer token", endpoint.ErrUnauthenticated)
	}
	return strings.TrimSpace(token), nil
}
