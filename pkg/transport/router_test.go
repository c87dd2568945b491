package transport_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestRouter(t *testing.T) {
	keys := newKeys(t, testSecret)
	rt := newRouter(keys)
	valid := sign(t, keys, "alice", time.Hour)
	forged := sign(t, newKeys(t, "another-secret-of-32-bytes-long!"), "alice", time.Hour)
	expired := sign(t, keys, "alice", -time.Minute)

	const wwwAuthenticate = `Bearer realm="ocis"`
	for _, tc := range []struct {
		name          string
		method        string
		target        string
		body          string
		authorization string
		wantStatus    int
		wantCode      string // of an error answer
		wantMessage   string // part of the message of an error answer
		wantHeader    map[string]string
		wantBody      string // of a success answer
	}{
		{
			name: "unknown path", method: http.MethodGet, target: "/nope",
			wantStatus: http.StatusNotFound, wantCode: "not_found",
		},
		{
			name: "unknown path under a known prefix", method: http.MethodGet, target: "/api/v1/users/alice/files",
			wantStatus: http.StatusNotFound, wantCode: "not_found",
		},
		{
			name: "wrong method", method: http.MethodDelete, target: "/api/v1/users",
			wantStatus: http.StatusMethodNotAllowed, wantCode: "method_not_allowed",
			wantHeader: map[string]string{"Allow": "POST"},
		},
		{
			name: "wrong method lists every method of the path", method: http.MethodPut, target: "/api/v1/users/alice",
			wantStatus: http.StatusMethodNotAllowed, wantCode: "method_not_allowed",
			wantHeader: map[string]string{"Allow": "GET, DELETE, HEAD"},
		},
		{
			name: "wrong method needs no token", method: http.MethodPatch, target: "/api/v1/users/alice",
			authorization: "", wantStatus: http.StatusMethodNotAllowed, wantCode: "method_not_allowed",
		},
		{
			name: "public route without token", method: http.MethodPost, target: "/api/v1/echo", body: `{"name":"al"}`,
			wantStatus: http.StatusOK, wantBody: `{"name":"al","age":0}`,
		},
		{
			name: "protected route without token", method: http.MethodGet, target: "/api/v1/users/alice",
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated",
			wantHeader: map[string]string{"WWW-Authenticate": wwwAuthenticate},
		},
		{
			name: "forged token", method: http.MethodGet, target: "/api/v1/users/alice", authorization: "Bearer " + forged,
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated", wantMessage: "token signature invalid",
			wantHeader: map[string]string{"WWW-Authenticate": wwwAuthenticate},
		},
		{
			name: "expired token", method: http.MethodGet, target: "/api/v1/users/alice", authorization: "Bearer " + expired,
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated", wantMessage: "token expired",
			wantHeader: map[string]string{"WWW-Authenticate": wwwAuthenticate},
		},
		{
			name: "garbage token", method: http.MethodGet, target: "/api/v1/users/alice", authorization: "Bearer not.a.jwt",
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated",
		},
		{
			name: "other scheme", method: http.MethodGet, target: "/api/v1/users/alice", authorization: "Basic YWxpY2U6c2VjcmV0",
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated",
		},
		{
			name: "empty bearer", method: http.MethodGet, target: "/api/v1/users/alice", authorization: "Bearer  ",
			wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated",
		},
		{
			name: "valid token reaches the endpoint with its claims", method: http.MethodGet, target: "/api/v1/users/alice",
			authorization: "Bearer " + valid, wantStatus: http.StatusOK, wantBody: `{"name":"alice","caller":"alice"}`,
		},
		{
			name: "bearer scheme is case-insensitive", method: http.MethodGet, target: "/api/v1/users/carol",
			authorization: "bearer " + valid, wantStatus: http.StatusOK, wantBody: `{"name":"carol","caller":"alice"}`,
		},
		{
			name: "HEAD on a GET route", method: http.MethodHead, target: "/api/v1/users/alice",
			authorization: "Bearer " + valid, wantStatus: http.StatusOK,
		},
		{
			name: "business error keeps its kind and message", method: http.MethodGet, target: "/api/v1/users/bob",
			authorization: "Bearer " + valid, wantStatus: http.StatusNotFound, wantCode: "not_found", wantMessage: "user not found: bob",
		},
		{
			name: "internal error hides its message", method: http.MethodGet, target: "/api/v1/users/boom",
			authorization: "Bearer " + valid, wantStatus: http.StatusInternalServerError, wantCode: "internal", wantMessage: "internal error",
		},
		{
			name: "success status of the route", method: http.MethodPost, target: "/api/v1/users", body: `{"name":"dave"}`,
			authorization: "Bearer " + valid, wantStatus: http.StatusCreated, wantBody: `{"name":"dave"}`,
		},
		{
			name: "conflict", method: http.MethodPost, target: "/api/v1/users", body: `{"name":"taken"}`,
			authorization: "Bearer " + valid, wantStatus: http.StatusConflict, wantCode: "conflict", wantMessage: "user exists: taken",
		},
		{
			name: "unknown field", method: http.MethodPost, target: "/api/v1/users", body: `{"name":"dave","admin":true}`,
			authorization: "Bearer " + valid, wantStatus: http.StatusBadRequest, wantCode: "invalid_argument",
		},
		{
			name: "no content", method: http.MethodDelete, target: "/api/v1/users/alice",
			authorization: "Bearer " + valid, wantStatus: http.StatusNoContent,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)

			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			for k, want := range tc.wantHeader {
				if got := w.Header().Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.wantCode == "" {
				// A recorder keeps the body of a HEAD answer; the server drops it.
				if got := strings.TrimSpace(w.Body.String()); tc.method != http.MethodHead && got != tc.wantBody {
					t.Errorf("body = %s, want %s", got, tc.wantBody)
				}
				return
			}
			if got, want := w.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			got := decodeWireError(t, w.Body.Bytes())
			if got.Error.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", got.Error.Code, tc.wantCode)
			}
			if got.Error.Message == "" {
				t.Error("message is empty")
			}
			if !strings.Contains(got.Error.Message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", got.Error.Message, tc.wantMessage)
			}
			if strings.Contains(w.Body.String(), "/var/lib") {
				t.Errorf("answer leaks a path: %s", w.Body)
			}
		})
	}
}

func TestRouterBadPatternPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handle with a pattern without a method did not panic")
		}
	}()
	newRouter(newKeys(t, testSecret)).HandleHTTP("/no/method", http.NotFoundHandler())
}

func TestRouterPathValues(t *testing.T) {
	// Handlers read wildcards with PathValue, so the router must hand them
	// the request as ServeMux matched it.
	rt := transport.NewRouter(log.NewNopLogger(), nil)
	rt.HandleHTTP("GET /api/v1/files/{path...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Pattern+" "+r.PathValue("path"))
	}), transport.Public())
	for _, tc := range []struct {
		target string
		want   string
	}{
		{target: "/api/v1/files/a.txt", want: "GET /api/v1/files/{path...} a.txt"},
		{target: "/api/v1/files/dir/sub/b%20c.txt", want: "GET /api/v1/files/{path...} dir/sub/b c.txt"},
		{target: "/api/v1/files/", want: "GET /api/v1/files/{path...} "},
	} {
		t.Run(tc.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.target, nil))
			if got := w.Body.String(); w.Code != http.StatusOK || got != tc.want {
				t.Errorf("got (%d, %q), want (200, %q)", w.Code, got, tc.want)
			}
		})
	}
}

func TestStaticToken(t *testing.T) {
	const token = "runtime-control-token"
	rt := transport.NewRouter(log.NewNopLogger(), transport.StaticToken(token))
	rt.HandleHTTP("GET /api/v1/services", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "[]")
	}))
	for _, tc := range []struct {
		name          string
		authorization string
		wantStatus    int
	}{
		{name: "right token", authorization: "Bearer " + token, wantStatus: http.StatusOK},
		{name: "no token", wantStatus: http.StatusUnauthorized},
		{name: "wrong token", authorization: "Bearer " + token + "x", wantStatus: http.StatusUnauthorized},
		{name: "prefix of the token", authorization: "Bearer runtime", wantStatus: http.StatusUnauthorized},
		{name: "token in another scheme", authorization: "Token " + token, wantStatus: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/services", nil)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusUnauthorized {
				if got := decodeWireError(t, w.Body.Bytes()); got.Error.Code != "unauthenticated" {
					t.Errorf("code = %q, want unauthenticated", got.Error.Code)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("WWW-Authenticate header missing")
				}
			}
		})
	}
}
