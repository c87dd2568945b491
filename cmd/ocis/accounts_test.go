package main_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// TestDeletedAccountLosesAccess is the first hole of the hardening issue:
// a deleted user's token must stop working everywhere at once, the files
// must go, and a new account of the same name must inherit nothing.
func TestDeletedAccountLosesAccess(t *testing.T) {
	e, _ := startFamily(t)
	bob := e.userCtx("bob")
	bobToken, _ := transport.BearerFrom(bob)
	for _, via := range []string{"proxy", "storage"} {
		if _, _, err := e.storageVia(via).Upload(bob, "secret-"+via+".txt", strings.NewReader("bob's "+via), -1, storage.UploadOptions{}); err != nil {
			t.Fatalf("upload via %s: %v", via, err)
		}
	}
	me, err := e.proxyUsers().Me(bob, endpoint.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if me.ID == "" {
		t.Fatalf("user object has no id: %+v", me)
	}
	tree := filepath.Join(e.dir, "storage", "files", me.ID)
	if _, err := os.Stat(tree); err != nil {
		t.Fatalf("bob's files are not kept under his id: %v", err)
	}

	c := e.proxyUsers()
	if _, err := c.DeleteUser(e.adminCtx(c), users.DeleteUserRequest{Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()

	// Every service refuses the token at once: reads and writes, on the
	// proxy and on storage directly, and the users service itself.
	for _, tc := range []struct{ method, url string }{
		{http.MethodGet, "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"] + "/api/v1/files/secret-proxy.txt"},
		{http.MethodGet, "http://" + e.vars["OCIS_STORAGE_HTTP_ADDR"] + "/api/v1/files/secret-proxy.txt"},
		{http.MethodPut, "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"] + "/api/v1/files/new.txt"},
		{http.MethodPut, "http://" + e.vars["OCIS_STORAGE_HTTP_ADDR"] + "/api/v1/files/new.txt"},
		{http.MethodGet, "http://" + e.vars["OCIS_STORAGE_HTTP_ADDR"] + "/api/v1/files/"},
		{http.MethodGet, "http://" + e.vars["OCIS_USERS_HTTP_ADDR"] + "/api/v1/users/me"},
	} {
		expectErrorReason(t, tc.method, tc.url, bobToken, "x", http.StatusUnauthorized, "unauthenticated", "auth.token_revoked")
	}
	if took := time.Since(deleted); took > time.Second {
		t.Errorf("revocation took %s to reach every service, want under 1s", took)
	}

	// The files go with the account.
	waitFor(t, "bob's files removed", 5*time.Second, func() bool {
		_, err := os.Stat(tree)
		return errors.Is(err, fs.ErrNotExist)
	})

	// A new bob is someone else: he sees nothing of the old one's.
	newBob := e.userCtx("bob")
	newMe, err := c.Me(newBob, endpoint.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if newMe.ID == me.ID {
		t.Fatalf("the new bob has the old one's id %q", me.ID)
	}
	for _, via := range []string{"proxy", "storage"} {
		if _, _, err := download(t, e.storageVia(via), newBob, "secret-"+via+".txt", ""); !errors.Is(err, storage.ErrFileNotFound) {
			t.Errorf("new bob reads the old one's file via %s: err = %v, want %v", via, err, storage.ErrFileNotFound)
		}
	}
	expectErrorReason(t, http.MethodGet, "http://"+e.vars["OCIS_PROXY_HTTP_ADDR"]+"/api/v1/files/secret-proxy.txt", bobToken, "", http.StatusUnauthorized, "unauthenticated", "auth.token_revoked")
}

// TestDeletionReachesServicesInOtherProcesses: users and storage run as
// processes of their own on one machine (one base data path); a deletion
// made in users is refused by storage within about a second, and by a
// storage started afterwards from its first request.
func TestDeletionReachesServicesInOtherProcesses(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_JWT_SECRET"] = "a-test-secret-of-enough-length"
	e.start("users", "server")
	waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	storageProc := e.start("storage", "server")
	waitHTTP(t, "http://"+e.vars["OCIS_STORAGE_DEBUG_ADDR"]+"/readyz", http.StatusOK)

	c := e.usersClient()
	admin := e.adminCtx(c)
	if _, err := c.CreateUser(admin, users.CreateUserRequest{Username: "bob", Password: "bob-pass-1"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(context.Background(), users.LoginRequest{Username: "bob", Password: "bob-pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	bob := transport.WithBearer(context.Background(), tok.Token)
	if _, _, err := e.storageVia("storage").Upload(bob, "a.txt", strings.NewReader("bob's"), -1, storage.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteUser(admin, users.DeleteUserRequest{Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	url := "http://" + e.vars["OCIS_STORAGE_HTTP_ADDR"] + "/api/v1/files/a.txt"
	waitFor(t, "storage in its own process refusing the deleted account", 3*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	t.Logf("storage refused the deleted account %s after the deletion", time.Since(deleted).Round(time.Millisecond))
	expectErrorReason(t, http.MethodGet, url, tok.Token, "", http.StatusUnauthorized, "unauthenticated", "auth.token_revoked")

	// A storage started after the deletion refuses from its first request.
	storageProc.stop(t, 10*time.Second)
	e.start("storage", "server")
	waitHTTP(t, "http://"+e.vars["OCIS_STORAGE_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	expectErrorReason(t, http.MethodPut, url, tok.Token, "x", http.StatusUnauthorized, "unauthenticated", "auth.token_revoked")
}
