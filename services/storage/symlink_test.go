package storage

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPlantedLinksNeverLeadOut(t *testing.T) {
	e := newTestEnv(t, 0)
	const secret, bobData = "TOP-SECRET", "BOB-DATA"
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	e.upload(t, "bob", "b.txt", []byte(bobData))
	e.upload(t, "alice", "mine.txt", []byte("mine"))
	e.upload(t, "alice", "sub/own.txt", []byte("own"))
	aliceRoot := filepath.Join(e.dir, "files", "alice")
	bobRoot := filepath.Join(e.dir, "files", "bob")
	relOutside, err := filepath.Rel(aliceRoot, outside)
	if err != nil {
		t.Fatal(err)
	}
	// Links an operator or another process might plant; the service
	// itself never makes one.
	for name, target := range map[string]string{
		"out":     outside,
		"rel":     relOutside,
		"bob":     "../bob",
		"bobabs":  bobRoot,
		"secret":  filepath.Join(outside, "secret"),
		"bobfile": "../bob/b.txt",
		"loop":    "loop",
		"inner":   "sub",
	} {
		if err := os.Symlink(target, filepath.Join(aliceRoot, name)); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name   string
		method string
		path   string
	}{
		{name: "read through a link to a dir outside", method: http.MethodGet, path: "out/secret"},
		{name: "read through a relative link outside", method: http.MethodGet, path: "rel/secret"},
		{name: "read through a link to bob", method: http.MethodGet, path: "bob/b.txt"},
		{name: "read through an absolute link to bob", method: http.MethodGet, path: "bobabs/b.txt"},
		{name: "read a link to a file outside", method: http.MethodGet, path: "secret"},
		{name: "read a link to bob's file", method: http.MethodGet, path: "bobfile"},
		{name: "read a looping link", method: http.MethodGet, path: "loop"},
		{name: "read through a looping link", method: http.MethodGet, path: "loop/x"},
		{name: "head through a link", method: http.MethodHead, path: "out/secret"},
		{name: "list through a link outside", method: http.MethodGet, path: "out/"},
		{name: "list through a link to bob", method: http.MethodGet, path: "bob/"},
		{name: "delete through a link outside", method: http.MethodDelete, path: "out/secret"},
		{name: "delete through a link to bob", method: http.MethodDelete, path: "bob/b.txt"},
		{name: "delete a link", method: http.MethodDelete, path: "secret"},
		{name: "write through a link outside", method: http.MethodPut, path: "out/new.txt"},
		{name: "write through a link to bob", method: http.MethodPut, path: "bob/new.txt"},
		{name: "write deep through a link", method: http.MethodPut, path: "out/deeper/new.txt"},
		{name: "overwrite a link to a file outside", method: http.MethodPut, path: "secret"},
		{name: "overwrite a link to bob's file", method: http.MethodPut, path: "bobfile"},
		{name: "overwrite bob's file through a link", method: http.MethodPut, path: "bob/b.txt"},
		{name: "write through a link inside the tree", method: http.MethodPut, path: "inner/new.txt"},
		{name: "list a link inside the tree", method: http.MethodGet, path: "inner/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.method == http.MethodPut {
				body = strings.NewReader("pwned")
			} else {
				body = strings.NewReader("")
			}
			a := e.do(t, tc.method, "/api/v1/files/"+tc.path, "alice", body, nil)
			if a.status != http.StatusNotFound && a.status != http.StatusBadRequest {
				t.Errorf("%s %s = %d %s, want 404 or 400", tc.method, tc.path, a.status, a.body)
			}
			if tc.method != http.MethodHead && a.code() == "" {
				t.Errorf("answer %s is no JSON error", a.body)
			}
			if s := string(a.body); strings.Contains(s, secret) || strings.Contains(s, bobData) || strings.Contains(s, e.dir) || strings.Contains(s, outside) {
				t.Errorf("answer reveals a target: %s", s)
			}
		})
	}

	// The targets are as they were.
	for path, want := range map[string]string{
		filepath.Join(outside, "secret"): secret,
		filepath.Join(bobRoot, "b.txt"):  bobData,
	} {
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("%s = (%q, %v), want %q", path, got, err, want)
		}
	}
	if got := dirNames(t, outside); !reflect.DeepEqual(got, []string{"secret"}) {
		t.Errorf("outside holds %v", got)
	}
	if got := dirNames(t, bobRoot); !reflect.DeepEqual(got, []string{"b.txt"}) {
		t.Errorf("bob's tree holds %v", got)
	}
	// A listing shows no link, and alice's own file is still hers.
	listing, err := e.client.List(e.as(t, "alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(listing.Entries) != 2 || listing.Entries[0].Path != "mine.txt" || listing.Entries[1].Path != "sub/" {
		t.Errorf("alice's root lists %+v, want mine.txt and sub/ alone", listing.Entries)
	}
	if got := dirNames(t, filepath.Join(aliceRoot, "sub")); !reflect.DeepEqual(got, []string{"own.txt"}) {
		t.Errorf("alice's sub/ holds %v", got)
	}
	// Recovery does not follow the links either.
	if _, err := e.files.recover(); err != nil {
		t.Fatalf("recover with planted links: %v", err)
	}
	for _, p := range []string{"out/secret", "rel/secret", "bob/b.txt", "secret", "bobfile"} {
		if _, found, _ := e.files.store.get("alice", p); found {
			t.Errorf("recovery recorded %s for alice", p)
		}
	}
}

func TestPlantedTreeLink(t *testing.T) {
	// A user's root that is itself a link would hand that user another
	// tree: the service refuses to use it.
	e := newTestEnv(t, 0)
	e.upload(t, "bob", "b.txt", []byte("BOB-DATA"))
	if err := os.Symlink("bob", filepath.Join(e.dir, "files", "mallory")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		path   string
	}{
		{method: http.MethodGet, path: "b.txt"},
		{method: http.MethodGet, path: ""},
		{method: http.MethodPut, path: "b.txt"},
		{method: http.MethodDelete, path: "b.txt"},
	} {
		a := e.do(t, tc.method, "/api/v1/files/"+tc.path, "mallory", strings.NewReader("x"), nil)
		if a.status < 400 || strings.Contains(string(a.body), "BOB-DATA") {
			t.Errorf("%s %s as mallory = %d %s, want an error", tc.method, tc.path, a.status, a.body)
		}
	}
	if got, _ := e.download(t, "bob", "b.txt"); string(got) != "BOB-DATA" {
		t.Errorf("bob's file = %q", got)
	}
}
