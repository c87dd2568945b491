package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/activity"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// activityVia returns an activity client at the proxy or at activity itself.
func (e *env) activityVia(service string) *activity.Client {
	e.t.Helper()
	c, err := activity.NewClient("http://"+e.vars[strings.ToUpper("OCIS_"+service+"_HTTP_ADDR")], nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// activityLines is a user's whole log as "type subject", newest first.
func activityLines(ctx context.Context, c *activity.Client) ([]string, error) {
	page, err := c.List(ctx, activity.ListRequest{Limit: activity.MaxLimit})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, a := range page.Activities {
		out = append(out, a.Type+" "+a.Subject)
	}
	return out, nil
}

// waitActivity waits until the log of ctx's user is exactly want.
func waitActivity(t *testing.T, c *activity.Client, ctx context.Context, want ...string) {
	t.Helper()
	var got []string
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err = activityLines(ctx, c)
		if err == nil && slices.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("activity = %q (err %v)\nwant       %q", got, err, want)
}

func uploadText(t *testing.T, c *storage.Client, ctx context.Context, p, data string) {
	t.Helper()
	if _, _, err := c.Upload(ctx, p, strings.NewReader(data), int64(len(data)), storage.UploadOptions{}); err != nil {
		t.Fatalf("upload %s: %v", p, err)
	}
}

// lagOf is the lag `ocis list --json` shows for name, -1 when none.
func (e *env) lagOf(name string) int64 {
	e.t.Helper()
	st := e.status(name)
	if st.Lag == nil {
		return -1
	}
	return int64(*st.Lag)
}

func TestActivityOfEachUser(t *testing.T) {
	e, _ := startFamily(t)
	alice, bob := e.userCtx("alice"), e.userCtx("bob")
	files := e.storageVia("proxy")
	uploadText(t, files, alice, "docs/a.txt", "one")
	uploadText(t, files, alice, "docs/b.txt", "two")
	if err := files.Delete(alice, "docs/a.txt"); err != nil {
		t.Fatal(err)
	}

	c := e.activityVia("proxy")
	waitActivity(t, c, alice,
		"file.deleted docs/a.txt",
		"file.written docs/b.txt",
		"file.written docs/a.txt",
		"user.login alice",
		"user.created alice",
	)
	waitActivity(t, c, bob, "user.login bob", "user.created bob")

	t.Run("pages through the proxy and directly", func(t *testing.T) {
		for _, via := range []string{"proxy", "activity"} {
			c := e.activityVia(via)
			first, err := c.List(alice, activity.ListRequest{Limit: 2})
			if err != nil || len(first.Activities) != 2 || first.Next == "" {
				t.Fatalf("%s: first page = %+v, %v", via, first, err)
			}
			rest, err := c.List(alice, activity.ListRequest{Limit: 10, Before: first.Next})
			if err != nil || len(rest.Activities) != 3 || rest.Next != "" {
				t.Fatalf("%s: second page = %+v, %v", via, rest, err)
			}
			if got := rest.Activities[0].Subject; got != "docs/a.txt" {
				t.Errorf("%s: second page begins with %q, want docs/a.txt", via, got)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		base := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"] + "/api/v1/activities"
		token, _ := transport.BearerFrom(alice)
		expectError(t, http.MethodGet, base, "", "", http.StatusUnauthorized, "unauthenticated")
		expectErrorReason(t, http.MethodGet, base+"?limit=abc", token, "", http.StatusBadRequest, "invalid_argument", "activity.bad_limit")
		expectErrorReason(t, http.MethodGet, base+"?limit=501", token, "", http.StatusBadRequest, "invalid_argument", "activity.bad_limit")
		expectErrorReason(t, http.MethodGet, base+"?before=not-a-cursor", token, "", http.StatusBadRequest, "invalid_argument", "activity.bad_cursor")
		// A query that does not parse is refused, not read as no query.
		expectErrorReason(t, http.MethodGet, base+"?limit=%zz", token, "", http.StatusBadRequest, "invalid_argument", "invalid_argument")
		expectErrorReason(t, http.MethodGet, base+"?limit=1;x", token, "", http.StatusBadRequest, "invalid_argument", "invalid_argument")
	})

	t.Run("a deleted account's log goes", func(t *testing.T) {
		u := e.proxyUsers()
		admin := e.adminCtx(u)
		if _, err := u.DeleteUser(admin, users.DeleteUserRequest{Username: "bob"}); err != nil {
			t.Fatal(err)
		}
		// The admin's own log says so; bob's token no longer opens any.
		waitFor(t, "the deletion in the admin's log", 20*time.Second, func() bool {
			got, err := activityLines(admin, c)
			return err == nil && len(got) > 0 && got[0] == "user.deleted bob"
		})
		if _, err := c.List(bob, activity.ListRequest{}); err == nil {
			t.Error("a deleted account's token still reads a log")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		// The consumer's lag gauge on activity's debug address, the
		// publishers' counts on storage's; both lint-clean.
		for _, tt := range []struct{ service, want string }{
			{"activity", `ocis_events_consumer_pending{consumer="activity-test"} 0`},
			{"storage", `ocis_events_published_total 3`},
		} {
			var body []byte
			waitFor(t, tt.service+" metrics with "+tt.want, 20*time.Second, func() bool {
				body = []byte(getBody(t, "http://"+e.vars[config.EnvName(tt.service, "debug-addr")]+"/metrics"))
				return bytes.Contains(body, []byte(tt.want))
			})
			if problems, err := promlint.New(bytes.NewReader(body)).Lint(); err != nil || len(problems) > 0 {
				t.Errorf("%s metrics: lint problems %v, err %v", tt.service, problems, err)
			}
		}
	})

	t.Run("lag in ocis list", func(t *testing.T) {
		waitFor(t, "activity's lag 0 in ocis list", 20*time.Second, func() bool { return e.lagOf("activity") == 0 })
		if lag := e.lagOf("storage"); lag != -1 {
			t.Errorf("storage consumes nothing but shows lag %d", lag)
		}
		code, stdout, _ := e.run("list")
		if code != 0 || !strings.Contains(stdout, "LAG") {
			t.Errorf("ocis list (exit %d) has no LAG column:\n%s", code, stdout)
		}
	})
}

func TestActivityCatchesUpAfterItWasStopped(t *testing.T) {
	e, _ := startFamily(t)
	alice := e.userCtx("alice")
	files, c := e.storageVia("proxy"), e.activityVia("proxy")
	waitActivity(t, c, alice, "user.login alice", "user.created alice")

	if code, _, stderr := e.run("kill", "activity"); code != 0 {
		t.Fatalf("ocis kill activity: exit %d: %s", code, stderr)
	}
	uploadText(t, files, alice, "while-stopped.txt", "x")
	// The consumer is durable: what it has not had yet shows as its lag.
	waitFor(t, "lag 1 of the stopped activity", 20*time.Second, func() bool { return e.lagOf("activity") == 1 })
	if code, _, stderr := e.run("run", "activity"); code != 0 {
		t.Fatalf("ocis run activity: exit %d: %s", code, stderr)
	}
	waitActivity(t, c, alice, "file.written while-stopped.txt", "user.login alice", "user.created alice")
}

func TestUsersKeepWorkingWhileNATSIsDown(t *testing.T) {
	e, _ := startFamily(t)
	alice := e.userCtx("alice")
	files, c := e.storageVia("proxy"), e.activityVia("proxy")
	// A first upload places alice on this node's storage; the proxy
	// remembers it, so her files stay reachable while NATS is away.
	uploadText(t, files, alice, "placed.txt", "x")
	waitActivity(t, c, alice, "file.written placed.txt", "user.login alice", "user.created alice")

	if code, _, stderr := e.run("kill", "nats"); code != 0 {
		t.Fatalf("ocis kill nats: exit %d: %s", code, stderr)
	}
	// Logins and uploads answer as fast as ever: their events wait in
	// the publishers' outboxes.
	u := e.proxyUsers()
	for i := range 3 {
		start := time.Now()
		if _, err := u.Login(context.Background(), users.LoginRequest{Username: "alice", Password: "alice-pass-1"}); err != nil {
			t.Fatalf("login while NATS is down: %v", err)
		}
		p := fmt.Sprintf("offline-%d.txt", i)
		if _, _, err := files.Upload(alice, p, bytes.NewReader([]byte("x")), 1, storage.UploadOptions{}); err != nil {
			t.Fatalf("upload while NATS is down: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("login and upload took %s while NATS was down", d)
		}
	}
	if code, _, stderr := e.run("run", "nats"); code != 0 {
		t.Fatalf("ocis run nats: exit %d: %s", code, stderr)
	}
	// Once NATS is back, the events flow: each publisher's own order is
	// kept, the two publishers' are interleaved by time.
	waitActivity(t, c, alice,
		"file.written offline-2.txt", "user.login alice",
		"file.written offline-1.txt", "user.login alice",
		"file.written offline-0.txt", "user.login alice",
		"file.written placed.txt", "user.login alice", "user.created alice")
}
