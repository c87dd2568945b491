package main_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/services/users"
)

// proxyUsers is a users client pointed at the proxy.
func (e *env) proxyUsers() *users.Client {
	e.t.Helper()
	c, err := users.NewClient("http://"+e.vars["OCIS_PROXY_HTTP_ADDR"], nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestProxyRoutesToUsers(t *testing.T) {
	e, _ := startFamily(t)
	waitHTTP(t, "http://"+e.vars["OCIS_PROXY_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	c := e.proxyUsers()
	admin := e.adminCtx(c)
	me, err := c.Me(admin, endpoint.Empty{})
	if err != nil || me.Username != "admin" {
		t.Fatalf("me through the proxy: %+v, %v", me, err)
	}

	base := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]
	tests := []struct {
		name, path string
		token      bool
		wantStatus int
		wantCode   string
	}{
		{"no token at the proxy", "/api/v1/users/me", false, 401, "unauthenticated"},
		{"path no service owns", "/api/v1/nothing", true, 404, "not_found"},
		{"root", "/", true, 404, "not_found"},
	}
	tok := strings.TrimPrefix(bearerOf(t, e, c), "Bearer ")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := ""
			if tt.token {
				token = tok
			}
			h := expectError(t, http.MethodGet, base+tt.path, token, "", tt.wantStatus, tt.wantCode)
			if h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the answer")
			}
		})
	}

	t.Run("killed service is unavailable within a second, then back", func(t *testing.T) {
		if code, _, stderr := e.run("kill", "users"); code != 0 {
			t.Fatalf("kill users: %s", stderr)
		}
		ctx, cancel := context.WithTimeout(admin, time.Second)
		defer cancel()
		_, err := c.Me(ctx, endpoint.Empty{})
		if !errors.Is(err, apierr.ErrUnavailable) {
			t.Errorf("me with users killed: %v, want unavailable (503)", err)
		}
		if code, _, stderr := e.run("run", "users"); code != 0 {
			t.Fatalf("run users: %s", stderr)
		}
		if _, err := c.Me(admin, endpoint.Empty{}); err != nil {
			t.Errorf("me after ocis run users: %v", err)
		}
	})

	if got := e.status("proxy"); got.State != "running" {
		t.Errorf("proxy is %s, want running throughout", got.State)
	}
}
