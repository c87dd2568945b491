package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/services"
)

// TestPlacementCommands runs `ocis storage placement` in process against
// an embedded NATS server.
func TestPlacementCommands(t *testing.T) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := "nats://" + s.Addr().(*net.TCPAddr).String()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := placement.OpenStore(ctx, nc, placement.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const alice = "0123456789abcdef0123456789abcdef"
	if _, _, err := store.Create(ctx, alice, placement.Record{Node: "n2", Username: "alice", By: "first write"}); err != nil {
		t.Fatal(err)
	}
	common := []string{"--nats-url", url, "--config-file", filepath.Join(t.TempDir(), "none.env")}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		verb := args[:3]
		full := append(append(append([]string{}, verb...), common...), args[3:]...)
		code := ocis(full, services.Catalogue(), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"show by name", []string{"storage", "placement", "show", "alice"}, exitOK, alice + "  alice     n2", ""},
		{"show by id", []string{"storage", "placement", "show", alice}, exitOK, "first write", ""},
		{"show someone placed nowhere", []string{"storage", "placement", "show", "bob"}, 1, "", "bob is placed on no node yet"},
		{"set by name moves", []string{"storage", "placement", "set", "alice", "n3"}, exitOK, "moved from node n2 to node n3", ""},
		{"set a name never placed", []string{"storage", "placement", "set", "bob", "n3"}, 1, "", "give the account id"},
		{"set an id never placed", []string{"storage", "placement", "set", "fedcba9876543210fedcba9876543210", "n2"}, exitOK, "placed on node n2", ""},
		{"set a bad node name", []string{"storage", "placement", "set", "alice", "no/de"}, 1, "", "no/de"},
		{"list", []string{"storage", "placement", "list"}, exitOK, "operator", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
		})
	}

	rec, found, err := store.Get(ctx, alice)
	if err != nil || !found || rec.Node != "n3" || rec.By != "operator" || rec.Username != "alice" {
		t.Fatalf("after set: %+v, %v, %v", rec, found, err)
	}
	code, stdout, stderr := run("storage", "placement", "list", "--json")
	if code != exitOK {
		t.Fatalf("list --json: exit %d, %s", code, stderr)
	}
	var rows []struct {
		ID   string `json:"id"`
		Node string `json:"node"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != 2 || rows[0].ID != alice || rows[0].Node != "n3" {
		t.Fatalf("list --json = %s (%v)", stdout, err)
	}
}
