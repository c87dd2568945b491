package dashboard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clock is a settable time for the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCodeIsSingleUseAndShortLived(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newSessions(c.now)

	code, expires, err := s.newCode()
	if err != nil {
		t.Fatal(err)
	}
	if want := c.t.Add(CodeTTL); !expires.Equal(want) {
		t.Errorf("expires %v, want %v", expires, want)
	}
	if _, _, err := s.redeem(code); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, _, err := s.redeem(code); !errors.Is(err, ErrBadCode) {
		t.Errorf("second use: %v, want ErrBadCode", err)
	}

	late, _, _ := s.newCode()
	c.t = c.t.Add(CodeTTL)
	if _, _, err := s.redeem(late); !errors.Is(err, ErrBadCode) {
		t.Errorf("use at expiry: %v, want ErrBadCode", err)
	}
	if _, _, err := s.redeem(""); !errors.Is(err, ErrBadCode) {
		t.Errorf("empty code: %v, want ErrBadCode", err)
	}
}

func TestSessionCookie(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newSessions(c.now)
	code, _, _ := s.newCode()
	id, sess, err := s.redeem(code)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.setCookie(w, httptest.NewRequest(http.MethodGet, "/ui/login", nil), id)
	cookie := w.Header().Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}

	req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	req.AddCookie(&http.Cookie{Name: s.cookie, Value: id})
	got, err := s.lookup(req)
	if err != nil || got.csrf != sess.csrf {
		t.Fatalf("lookup: %v, %+v", err, got)
	}
	for name, r := range map[string]*http.Request{
		"no cookie":    httptest.NewRequest(http.MethodGet, "/ui/", nil),
		"wrong cookie": withCookie(s.cookie, "forged"),
	} {
		if _, err := s.lookup(r); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: %v, want ErrNoSession", name, err)
		}
	}
	c.t = c.t.Add(SessionTTL)
	if _, err := s.lookup(req); !errors.Is(err, ErrNoSession) {
		t.Errorf("expired session: %v, want ErrNoSession", err)
	}
}

func withCookie(name, value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: value})
	return r
}

func TestCheckPost(t *testing.T) {
	sess := session{csrf: "token"}
	for _, tc := range []struct {
		name   string
		origin string
		header string
		form   string
		want   error
	}{
		{name: "same origin, header token", origin: "http://ctl:9250", header: "token"},
		{name: "same origin, form token", origin: "http://ctl:9250", form: "csrf=token"},
		{name: "no origin", header: "token", want: ErrBadOrigin},
		{name: "other host", origin: "http://evil:9250", header: "token", want: ErrBadOrigin},
		{name: "other port", origin: "http://ctl:9251", header: "token", want: ErrBadOrigin},
		{name: "other scheme", origin: "https://ctl:9250", header: "token", want: ErrBadOrigin},
		{name: "null origin", origin: "null", header: "token", want: ErrBadOrigin},
		{name: "wrong token", origin: "http://ctl:9250", header: "tokem", want: ErrBadCSRF},
		{name: "no token", origin: "http://ctl:9250", want: ErrBadCSRF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://ctl:9250/ui/logout", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.header != "" {
				r.Header.Set("X-CSRF-Token", tc.header)
			}
			got := checkPost(r, sess)
			if (tc.want == nil && got != nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
