package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// placedUser is a user of the placement test: the files it uploaded and
// the node its files live on.
type placedUser struct {
	name, id, token string
	node            string
	files           map[string][]byte
}

// TestMultiNodePlacement drives storage placement through the real binary
// on loopback nodes: proxy and users on n1, storage on n2 and n3, nats on
// all three. Users are placed on n2 and n3 by their first upload; SIGKILL
// of n2 makes every file request of its users 503 (never a 404, never an
// empty listing, and a PUT that lands nowhere) while n3's users go on;
// a storage node joining (n4) moves no one; n2 back, its users' files are
// all there.
func TestMultiNodePlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	begin := time.Now()
	c := newCluster(t, 4)
	c.natsNodes = 3 // n4 joins without a nats server, through OCIS_NATS_URL
	n1 := c.start(1, "proxy", "users", "nats")
	n2 := c.start(2, "storage", "nats")
	n3 := c.start(3, "storage", "nats")
	n1.waitList("storage running on n2 and n3", 30*time.Second, func(all []supervisor.Status) bool {
		return stateOn(all, "n2", "storage") == supervisor.StateRunning && stateOn(all, "n3", "storage") == supervisor.StateRunning
	})
	t.Logf("three nodes up in %s", time.Since(begin).Round(time.Millisecond))

	store := placementStore(t, n1)
	admin := n1.login("admin", testAdminPassword)
	var users []*placedUser
	count := map[string]int{}
	for i := 0; count["n2"] < 2 || count["n3"] < 2; i++ {
		if i == 12 {
			t.Fatalf("12 users and still not two on each node: %v", count)
		}
		u := newPlacedUser(t, n1, admin, fmt.Sprintf("user%d", i))
		rec, found, err := store.Get(context.Background(), u.id)
		if err != nil || !found {
			t.Fatalf("%s not placed after an upload: %v", u.name, err)
		}
		if rec.Username != u.name || rec.By != "first write" {
			t.Errorf("placement of %s = %+v", u.name, rec)
		}
		u.node = rec.Node
		count[u.node]++
		users = append(users, u)
	}
	t.Logf("users placed: %v", count)
	dataDir := map[string]string{"n2": storageFiles(n2), "n3": storageFiles(n3)}
	for _, u := range users {
		for node, dir := range dataDir {
			_, err := os.Stat(filepath.Join(dir, u.id))
			if (node == u.node) != (err == nil) {
				t.Errorf("%s placed on %s; tree on %s: %v", u.name, u.node, node, err)
			}
		}
	}

	killed := time.Now()
	n2.signal(syscall.SIGKILL)
	t.Run("n2 killed: its users get 503 for everything, n3's are served", func(t *testing.T) {
		// Before the registry drops n2 (one TTL) the proxy still tries
		// its address and is refused; after, placement refuses at once.
		// Both are 503; the second names placement.instance_down. When
		// the registry drops n2 is the registry's to bound (TTL + 1 s,
		// tested with it); here the bound only ends the loop on a loaded
		// machine, while every round must be 503 throughout.
		deadline := killed.Add(mnTTL + 10*time.Second)
		for round := 0; ; round++ {
			for _, u := range users {
				if u.node == "n2" {
					expectAllUnavailable(t, n1, u, round)
				} else {
					expectServed(t, n1, u)
				}
			}
			reason := errorReason(t, n1, http.MethodGet, "/api/v1/files/", users[indexOn(users, "n2")].token)
			if reason == "placement.instance_down" {
				t.Logf("n2's users refused by placement %s after the kill, %d rounds", time.Since(killed).Round(time.Millisecond), round+1)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the kill, the reason is still %q, want placement.instance_down", time.Since(killed).Round(time.Millisecond), reason)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("a storage node joining moves no one", func(t *testing.T) {
		n4 := c.start(4, "storage")
		n1.waitList("storage running on n4", 30*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n4", "storage") == supervisor.StateRunning
		})
		for _, u := range users {
			if u.node == "n2" {
				expectAllUnavailable(t, n1, u, 99)
			} else {
				expectServed(t, n1, u)
			}
			rec, _, err := store.Get(context.Background(), u.id)
			if err != nil || rec.Node != u.node {
				t.Errorf("%s: placement %+v (%v), want %s", u.name, rec, err, u.node)
			}
		}
		if entries, _ := os.ReadDir(storageFiles(n4)); len(entries) != 0 {
			t.Errorf("n4 holds trees of %d users; it should hold none", len(entries))
		}
		// A new user is placed among the storage nodes running now.
		u := newPlacedUser(t, n1, admin, "newcomer")
		rec, _, _ := store.Get(context.Background(), u.id)
		if rec.Node != "n3" && rec.Node != "n4" {
			t.Errorf("newcomer placed on %q, want n3 or n4 (n2 is down)", rec.Node)
		}
	})

	t.Run("n2 back: its users' files are all there", func(t *testing.T) {
		c.start(2, "storage", "nats")
		n1.waitList("storage running on n2 again", 30*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n2", "storage") == supervisor.StateRunning
		})
		for _, u := range users {
			waitFor(t, u.name+" served again", 10*time.Second, func() bool {
				status, _ := n1.get("/api/v1/files/", u.token)
				return status == http.StatusOK
			})
			expectServed(t, n1, u)
			// The uploads refused while n2 was down landed nowhere.
			if u.node == "n2" {
				if status, _ := n1.get("/api/v1/files/refused.txt", u.token); status != http.StatusNotFound {
					t.Errorf("%s: a PUT refused during the outage is there now (GET %d)", u.name, status)
				}
			}
		}
		for _, dir := range []string{storageFiles(n3), storageFiles(c.node(4))} {
			for _, u := range users {
				if u.node == "n2" {
					if _, err := os.Stat(filepath.Join(dir, u.id)); err == nil {
						t.Errorf("%s's tree appeared in %s", u.name, dir)
					}
				}
			}
		}
	})
	t.Logf("whole test %s", time.Since(begin).Round(time.Millisecond))
}

// placementStore opens the placement bucket through n's nats server.
func placementStore(t *testing.T, n *mnode) *placement.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := placement.OpenStore(ctx, n.natsConn(), placement.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storageFiles is where the node's storage keeps users' trees.
func storageFiles(n *mnode) string { return filepath.Join(n.env.dir, "storage", "files") }

// newPlacedUser creates an account through n's proxy, logs it in and
// uploads two files, which places it.
func newPlacedUser(t *testing.T, n *mnode, admin, name string) *placedUser {
	t.Helper()
	password := "pass-" + name + "-1A"
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, name, password)
	if status := n.call(http.MethodPost, "/api/v1/users", admin, strings.NewReader(body), nil); status != http.StatusCreated {
		t.Fatalf("create %s: status %d", name, status)
	}
	u := &placedUser{name: name, token: n.login(name, password), files: map[string][]byte{}}
	u.id = tokenSubject(t, u.token)
	for _, f := range []string{"a.bin", "dir/b.bin"} {
		data := make([]byte, 4096+len(name))
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		// The first upload may meet a cluster still electing the
		// placement bucket's leader: 503 until it has one.
		waitFor(t, "upload by "+name, 30*time.Second, func() bool {
			s := n.put("/api/v1/files/"+f, u.token, data)
			return s == http.StatusCreated || s == http.StatusOK
		})
		u.files[f] = data
	}
	return u
}

// tokenSubject reads the account id from a token's claims (its payload is
// base64url JSON; the test trusts the token it was just given).
func tokenSubject(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		t.Fatalf("token payload %s: %v", payload, err)
	}
	return claims.Sub
}

// expectServed checks that every file of u comes back byte-identical and
// that an upload works.
func expectServed(t *testing.T, n *mnode, u *placedUser) {
	t.Helper()
	for f, want := range u.files {
		status, got := n.get("/api/v1/files/"+f, u.token)
		if status != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("%s (on %s) GET %s: %d, %d bytes, identical %v", u.name, u.node, f, status, len(got), bytes.Equal(got, want))
		}
	}
	if status := n.put("/api/v1/files/more.txt", u.token, []byte("more")); status != http.StatusCreated && status != http.StatusOK {
		t.Errorf("%s (on %s) PUT: %d", u.name, u.node, status)
	}
}

// expectAllUnavailable checks that every kind of file request of u is 503
// unavailable: a listing, a download, a HEAD, a DELETE and an upload.
func expectAllUnavailable(t *testing.T, n *mnode, u *placedUser, round int) {
	t.Helper()
	for _, r := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, "/api/v1/files/", nil},
		{http.MethodGet, "/api/v1/files/dir/", nil},
		{http.MethodGet, "/api/v1/files/a.bin", nil},
		{http.MethodHead, "/api/v1/files/a.bin", nil},
		{http.MethodDelete, "/api/v1/files/a.bin", nil},
		{http.MethodPut, "/api/v1/files/refused.txt", []byte("must land nowhere")},
	} {
		status, code := requestCode(t, n, r.method, r.path, u.token, r.body)
		if status != http.StatusServiceUnavailable || (r.method != http.MethodHead && code != "unavailable") {
			t.Errorf("round %d: %s (on %s) %s %s: %d %q, want 503 unavailable", round, u.name, u.node, r.method, r.path, status, code)
		}
	}
}

// indexOn returns the index of the first user on node.
func indexOn(users []*placedUser, node string) int {
	for i, u := range users {
		if u.node == node {
			return i
		}
	}
	return -1
}

// errorReason returns the reason of the error answer to a request.
func errorReason(t *testing.T, n *mnode, method, path, token string) string {
	t.Helper()
	var out struct {
		Error struct {
			Reason string `json:"reason"`
		} `json:"error"`
	}
	n.call(method, path, token, nil, &out)
	return out.Error.Reason
}

// requestCode sends a request to n's proxy and returns the status and the
// error code of the answer ("" when it is not an error).
func requestCode(t *testing.T, n *mnode, method, path, token string, body []byte) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var out struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	status := n.call(method, path, token, rd, &out)
	return status, out.Error.Code
}
