package activity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

const testSecret = "activity-test-secret-0123456789"

// newTestServer builds the whole stack in process, as Run does but with
// a nop logger and a private registry, over st.
func newTestServer(t *testing.T, st *store) (*Client, *httptest.Server, *auth.Keys) {
	t.Helper()
	keys, err := auth.NewKeys(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	b := service.NewBase(Descriptor(), true)
	e := MakeEndpoints(newLogs(st), service.Chain(log.NewNopLogger(), prometheus.NewRegistry(), Name, &b))
	srv := httptest.NewServer(NewHTTPHandler(e, log.NewNopLogger(), keys))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, srv, keys
}

func tokenOf(t *testing.T, keys *auth.Keys, id, name string) string {
	t.Helper()
	token, _, err := keys.Sign(auth.Identity{ID: id, Name: name, Gen: 1}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestListThroughHTTP(t *testing.T) {
	st := openTestStore(t)
	for i := range 5 {
		apply(t, st, event(t, "file.written", "alice-id", fmt.Sprintf("f%d", i), i, nil))
	}
	apply(t, st, event(t, "file.written", "bob-id", "bob.txt", 10, nil))
	c, _, keys := newTestServer(t, st)
	alice := transport.WithBearer(context.Background(), tokenOf(t, keys, "alice-id", "alice"))

	var got []string
	req := ListRequest{Limit: 2}
	for range 10 {
		page, err := c.List(alice, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Activities {
			got = append(got, a.Subject)
		}
		if page.Next == "" {
			break
		}
		req.Before = page.Next
	}
	if want := fmt.Sprint([]string{"f4", "f3", "f2", "f1", "f0"}); fmt.Sprint(got) != want {
		t.Errorf("alice's pages = %v, want %v (and nothing of bob's)", got, want)
	}

	// The default limit, and an account with no log: an empty list, not null.
	carol := transport.WithBearer(context.Background(), tokenOf(t, keys, "carol-id", "carol"))
	page, err := c.List(carol, ListRequest{})
	if err != nil || page.Activities == nil || len(page.Activities) != 0 || page.Next != "" {
		t.Errorf("carol's page = %+v, %v; want an empty list", page, err)
	}
	if _, err := c.List(alice, ListRequest{Before: "%%%"}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor through the client: %v, want ErrBadCursor", err)
	}
}

func TestListErrorsOnTheWire(t *testing.T) {
	st := openTestStore(t)
	_, srv, keys := newTestServer(t, st)
	token := tokenOf(t, keys, "alice-id", "alice")
	tests := []struct {
		name, token, query string
		wantStatus         int
		wantCode           apierr.Code
		wantReason         string
	}{
		{"no token", "", "", http.StatusUnauthorized, apierr.CodeUnauthenticated, ""},
		{"bad token", "x.y.z", "", http.StatusUnauthorized, apierr.CodeUnauthenticated, ""},
		{"limit not a number", token, "?limit=ten", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_limit"},
		{"limit zero", token, "?limit=0", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_limit"},
		{"limit negative", token, "?limit=-1", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_limit"},
		{"limit over the max", token, fmt.Sprintf("?limit=%d", MaxLimit+1), http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_limit"},
		{"cursor not base64", token, "?before=!!", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_cursor"},
		{"cursor made up", token, "?before=not-a-cursor", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_cursor"},
		{"cursor too short", token, "?before=AQAA", http.StatusBadRequest, apierr.CodeInvalidArgument, "activity.bad_cursor"},
		{"max limit", token, fmt.Sprintf("?limit=%d", MaxLimit), http.StatusOK, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/activities"+tt.query, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct {
					Code   apierr.Code
					Reason string
				}
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.wantStatus || body.Error.Code != tt.wantCode || (tt.wantReason != "" && body.Error.Reason != tt.wantReason) {
				t.Errorf("got %d %+v, want %d %s %s", resp.StatusCode, body.Error, tt.wantStatus, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestDescriptor(t *testing.T) {
	d := Descriptor()
	if d.Name != "activity" || d.HTTPAddr != "127.0.0.1:9160" || d.DebugAddr != "127.0.0.1:9165" {
		t.Errorf("descriptor = %+v", d)
	}
	if fmt.Sprint(d.Routes) != "[/api/v1/activities]" || len(d.Public) != 0 || d.Optional {
		t.Errorf("routes %v, public %v, optional %v; want /api/v1/activities, none, in the default set", d.Routes, d.Public, d.Optional)
	}
	if got := ConsumerName("n2"); got != "activity-n2" {
		t.Errorf("consumer name = %q", got)
	}
}

func TestValidateNodeName(t *testing.T) {
	c := Descriptor().NewConfig().(*Config)
	if err := c.Validate(service.Env{Node: "n2"}); err != nil {
		t.Errorf("node n2: %v", err)
	}
	long := strings.Repeat("n", 56)
	if err := c.Validate(service.Env{Node: long}); err == nil || !strings.Contains(err.Error(), "OCIS_NODE") {
		t.Errorf("node of 56 characters: %v, want an error naming OCIS_NODE", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	key := entryKey(event(t, "file.written", "a", "p", 1, nil))
	got, err := decodeCursor(encodeCursor(key))
	if err != nil || string(got) != string(key) {
		t.Errorf("round trip = %x, %v; want %x", got, err, key)
	}
	for _, bad := range []string{"", "!!", "not-a-cursor", encodeCursor(key)[1:], base64URL(append([]byte{2}, key...)), base64URL(append([]byte{1}, make([]byte, 9)...))} {
		if _, err := decodeCursor(bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("decode %q: %v, want ErrBadCursor", bad, err)
		}
	}
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
