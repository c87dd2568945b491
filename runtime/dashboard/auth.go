package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// How long a login code and a session live. A code is typed or clicked
// right after `ocis dashboard` printed it, so a minute is plenty; a
// session lasts a working day and ends with the runtime.
const (
	CodeTTL    = time.Minute
	SessionTTL = 12 * time.Hour
)

// The errors of the dashboard's own checks.
var (
	ErrNoSession  = apierr.New(apierr.CodeUnauthenticated, "dashboard.no_session", "no dashboard session; run `ocis dashboard` for a login link")
	ErrBadCode    = apierr.New(apierr.CodeUnauthenticated, "dashboard.bad_code", "this login link is unknown, used or expired; run `ocis dashboard` for a new one")
	ErrBadOrigin  = apierr.New(apierr.CodePermissionDenied, "dashboard.bad_origin", "the request does not come from the dashboard's own page")
	ErrBadCSRF    = apierr.New(apierr.CodePermissionDenied, "dashboard.bad_csrf_token", "the request's CSRF token is missing or wrong; reload the dashboard")
	errTooManyNew = apierr.New(apierr.CodeResourceExhausted, "dashboard.too_many_codes", "too many unused login codes; use one or wait a minute")
)

// maxCodes bounds the unused codes kept at once, so that a script calling
// the token-protected route in a loop cannot grow the map without end.
const maxCodes = 100

// session is one browser logged in with a code.
type session struct {
	csrf    string
	expires time.Time
}

// sessions holds the one-time login codes and the sessions they opened.
// Both are kept only as SHA-256 sums, so a map lookup never compares a
// secret byte by byte, and a memory dump holds nothing a browser could
// present.
type sessions struct {
	now    func() time.Time
	cookie string // the session cookie's name, unique to this runtime

	mu       sync.Mutex
	codes    map[string]time.Time // sum of the code → expiry
	sessions map[string]session   // sum of the session id → session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{
		now: now,
		// Cookies do not tell ports apart: two runtimes on one host
		// (the tests, several loopback nodes) would overwrite each
		// other's cookie under one name.
		cookie:   "ocis_ui_" + random(6),
		codes:    map[string]time.Time{},
		sessions: map[string]session{},
	}
}

// random returns n random bytes, URL-safe base64.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand.Read's contract)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sum(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// newCode makes a login code valid for CodeTTL.
func (s *sessions) newCode() (string, time.Time, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	if len(s.codes) >= maxCodes {
		return "", time.Time{}, errTooManyNew
	}
	code := random(24)
	expires := now.Add(CodeTTL)
	s.codes[sum(code)] = expires
	return code, expires, nil
}

// redeem uses up code and opens a session: its id, for the cookie, and
// the session. A code works once, however the attempt ends.
func (s *sessions) redeem(code string) (string, session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	k := sum(code)
	expires, ok := s.codes[k]
	delete(s.codes, k)
	if !ok || code == "" || !now.Before(expires) {
		return "", session{}, ErrBadCode
	}
	id := random(32)
	sess := session{csrf: random(32), expires: now.Add(SessionTTL)}
	s.sessions[sum(id)] = sess
	return id, sess, nil
}

// lookup returns the session of r's cookie.
func (s *sessions) lookup(r *http.Request) (session, error) {
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" {
		return session{}, ErrNoSession
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sum(c.Value)]
	if !ok || !now.Before(sess.expires) {
		return session{}, ErrNoSession
	}
	return sess, nil
}

// end closes the session of r's cookie, if any.
func (s *sessions) end(r *http.Request) {
	if c, err := r.Cookie(s.cookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, sum(c.Value))
		s.mu.Unlock()
	}
}

func (s *sessions) pruneLocked(now time.Time) {
	for k, exp := range s.codes {
		if !now.Before(exp) {
			delete(s.codes, k)
		}
	}
	for k, sess := range s.sessions {
		if !now.Before(sess.expires) {
			delete(s.sessions, k)
		}
	}
}

// setCookie gives the browser its session: HttpOnly, so no script reads
// it; SameSite=Strict, so no other site's page or form sends it; scoped
// to /ui/; Secure when the dashboard is reached over TLS.
func (s *sessions) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: id, Path: "/ui/", MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func (s *sessions) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// checkPost is what every POST must pass besides the session: it comes
// from a page of this origin (Origin names the scheme and host the
// request went to), and it carries the session's CSRF token, in the
// X-CSRF-Token header or the csrf form field.
func checkPost(r *http.Request, sess session) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		return ErrBadCSRF
	}
	return nil
}

// checkOrigin accepts only a request whose Origin is the origin it was
// sent to. Browsers send Origin with every POST; a request without one
// did not come from the dashboard's page and is refused too.
func checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return fmt.Errorf("%w: no Origin header", ErrBadOrigin)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("%w: Origin %q", ErrBadOrigin, origin)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u.Scheme != scheme || u.Host != r.Host || u.Path != "" {
		return fmt.Errorf("%w: Origin %q is not %s://%s", ErrBadOrigin, origin, scheme, r.Host)
	}
	return nil
}
