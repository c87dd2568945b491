package transport_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func userPath(name string) string { return "/api/v1/users/" + transport.PathEscape(name) }

func TestClientRoute(t *testing.T) {
	keys := newKeys(t, testSecret)
	srv := httptest.NewServer(newRouter(keys))
	t.Cleanup(srv.Close)
	base := mustParseURL(t, srv.URL)
	c := srv.Client()

	get := transport.ClientRoute[string, user](c, base, http.MethodGet, userPath)
	del := transport.ClientRoute[string, endpoint.Empty](c, base, http.MethodDelete, userPath)
	create := transport.ClientRoute[createUserRequest, user](c, base, http.MethodPost, func(createUserRequest) string { return "/api/v1/users" })

	authed := transport.WithBearer(context.Background(), sign(t, keys, "alice", time.Hour))
	forged := transport.WithBearer(context.Background(), sign(t, newKeys(t, "another-secret-of-32-bytes-long!"), "alice", time.Hour))
	anonymous := context.Background()

	for _, tc := range []struct {
		name        string
		call        func() (any, error)
		want        any
		wantIs      []error
		wantIsNot   []error
		wantMessage string
	}{
		{
			name: "get",
			call: func() (any, error) { return endpoint.Call[string, user](authed, get, "alice") },
			want: user{Name: "alice", Caller: "alice"},
		},
		{
			name: "path segment is escaped",
			call: func() (any, error) { return endpoint.Call[string, user](authed, get, "a b/c?d") },
			want: user{Name: "a b/c?d", Caller: "alice"},
		},
		{
			name: "post with a body and a success status",
			call: func() (any, error) {
				return endpoint.Call[createUserRequest, user](authed, create, createUserRequest{Name: "dave", Age: 3})
			},
			want: user{Name: "dave"},
		},
		{
			name: "no content",
			call: func() (any, error) { return endpoint.Call[string, endpoint.Empty](authed, del, "alice") },
			want: endpoint.Empty{},
		},
		{
			name:        "sentinel holds across the wire",
			call:        func() (any, error) { return endpoint.Call[string, user](authed, get, "bob") },
			want:        user{},
			wantIs:      []error{errUserNotFound, apierr.ErrNotFound},
			wantIsNot:   []error{apierr.ErrConflict, errUserExists, apierr.ErrUnavailable},
			wantMessage: "user not found: bob",
		},
		{
			name: "conflict holds across the wire",
			call: func() (any, error) {
				return endpoint.Call[createUserRequest, user](authed, create, createUserRequest{Name: "taken"})
			},
			want:      user{},
			wantIs:    []error{errUserExists, apierr.ErrConflict},
			wantIsNot: []error{apierr.ErrNotFound},
		},
		{
			name:        "internal error arrives without its details",
			call:        func() (any, error) { return endpoint.Call[string, user](authed, get, "boom") },
			want:        user{},
			wantIs:      []error{apierr.ErrInternal},
			wantMessage: "internal error",
		},
		{
			name:   "no token",
			call:   func() (any, error) { return endpoint.Call[string, user](anonymous, get, "alice") },
			want:   user{},
			wantIs: []error{apierr.ErrUnauthenticated},
		},
		{
			name:   "forged token",
			call:   func() (any, error) { return endpoint.Call[string, user](forged, get, "alice") },
			want:   user{},
			wantIs: []error{apierr.ErrUnauthenticated},
		},
		{
			name:      "wrong request type is internal, not unavailable",
			call:      func() (any, error) { return get(authed, 42) },
			wantIs:    []error{apierr.ErrInternal},
			wantIsNot: []error{apierr.ErrUnavailable},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if len(tc.wantIs) == 0 && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
				}
			}
			for _, target := range tc.wantIsNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
				}
			}
			if tc.wantMessage != "" && (err == nil || err.Error() != tc.wantMessage) {
				t.Errorf("err = %v, want message %q", err, tc.wantMessage)
			}
			if got != tc.want {
				t.Errorf("response = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestClientRouteClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	get := transport.ClientRoute[string, user](&http.Client{}, mustParseURL(t, "http://"+addr), http.MethodGet, userPath)
	_, err = endpoint.Call[string, user](context.Background(), get, "alice")
	if !errors.Is(err, apierr.ErrUnavailable) {
		t.Errorf("err = %v, want one that is apierr.ErrUnavailable", err)
	}
}

func TestClientRouteBadPeer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantIs  error
	}{
		{
			name: "plain text 503",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			},
			wantIs: apierr.ErrUnavailable,
		},
		{
			name:    "plain text 404",
			handler: func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) },
			wantIs:  apierr.ErrNotFound,
		},
		{
			name:    "plain text 502",
			handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) },
			wantIs:  apierr.ErrInternal,
		},
		{
			name:    "200 with a body that is not JSON",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>") },
			wantIs:  apierr.ErrInternal,
		},
		{
			name: "connection dropped before the answer",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			wantIs: apierr.ErrUnavailable,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			get := transport.ClientRoute[string, user](srv.Client(), mustParseURL(t, srv.URL), http.MethodGet, userPath)
			_, err := endpoint.Call[string, user](context.Background(), get, "alice")
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want one that is %v", err, tc.wantIs)
			}
		})
	}
}
