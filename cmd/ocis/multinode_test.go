package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// threeNodes starts the cluster of the issue: proxy and users on node 1,
// storage on nodes 2 and 3, nats on all three, and waits until node 1
// sees every node's services running.
func threeNodes(t *testing.T) (*cluster, *mnode, *mnode, *mnode) {
	t.Helper()
	c := newCluster(t, 3)
	n1 := c.start(1, "proxy", "users", "nats")
	n2 := c.start(2, "storage", "nats")
	n3 := c.start(3, "storage", "nats")
	n1.waitList("every node's services running", 30*time.Second, func(all []supervisor.Status) bool {
		return stateOn(all, "n2", "storage") == supervisor.StateRunning &&
			stateOn(all, "n3", "storage") == supervisor.StateRunning &&
			stateOn(all, "n1", "users") == supervisor.StateRunning
	})
	return c, n1, n2, n3
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// upload puts data through n's proxy, retrying while the cluster is still
// forming (placement needs JetStream's quorum), and returns the status.
func upload(t *testing.T, n *mnode, path, token string, data []byte) {
	t.Helper()
	var status int
	waitFor(t, "upload "+path+" through "+n.name, 30*time.Second, func() bool {
		status = n.put(path, token, data)
		return status == http.StatusCreated || status == http.StatusOK
	})
}

// TestMultiNodeFilesAndControl is the first scenario and the
// control across nodes: files through node 1's proxy land on a remote
// storage and come back byte-identical; every node lists every node's
// services; a kill relayed from node 1 stops storage on node 2 and node 1
// stops routing there; a relayed command to a node that is not there is
// 503 naming it; a command with a wrong runtime token is 401.
func TestMultiNodeFilesAndControl(t *testing.T) {
	_, n1, n2, n3 := threeNodes(t)

	token := n1.login("admin", testAdminPassword)
	data := randomBytes(t, 256<<10)
	upload(t, n1, "/api/v1/files/big.bin", token, data)
	status, got := n1.get("/api/v1/files/big.bin", token)
	if status != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("download through n1: status %d, %d bytes, identical %v", status, len(got), bytes.Equal(got, data))
	}

	t.Run("list --all on node 3 shows every node", func(t *testing.T) {
		all := n3.waitList("n1, n2 and n3", 10*time.Second, func(all []supervisor.Status) bool {
			return slices.Equal(nodesIn(all), []string{"n1", "n2", "n3"})
		})
		for _, want := range []struct{ node, service string }{
			{"n1", "proxy"}, {"n1", "users"}, {"n1", "nats"}, {"n2", "storage"}, {"n2", "nats"}, {"n3", "storage"}, {"n3", "nats"},
		} {
			if st := stateOn(all, want.node, want.service); st != supervisor.StateRunning {
				t.Errorf("%s on %s: %q, want running", want.service, want.node, st)
			}
		}
		code, table, stderr := n3.env.run("list", "--all")
		if code != 0 || !strings.Contains(table, "NODE") || !strings.Contains(table, "n1") || !strings.Contains(table, n2.addr("storage")) {
			t.Errorf("ocis list --all: exit %d, stderr %q, table:\n%s", code, stderr, table)
		}
	})

	t.Run("kill --node relayed from node 1", func(t *testing.T) {
		code, stdout, stderr := n1.env.run("kill", "--node", "n2", "storage")
		if code != 0 || !strings.Contains(stdout, "storage on n2: stopped") {
			t.Fatalf("kill --node n2 storage: exit %d, %q %q", code, stdout, stderr)
		}
		// Node 2 itself agrees, and so does node 1's view (the one its
		// proxy routes by).
		if st := n2.env.status("storage").State; st != supervisor.StateStopped {
			t.Errorf("storage on n2 says %s, want stopped", st)
		}
		n1.waitList("storage on n2 stopped", 5*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n2", "storage") == supervisor.StateStopped
		})
		code, stdout, stderr = n1.env.run("run", "--node", "n2", "storage")
		if code != 0 || !strings.Contains(stdout, "storage on n2: running") {
			t.Fatalf("run --node n2 storage: exit %d, %q %q", code, stdout, stderr)
		}
		n1.waitList("storage on n2 running again", 5*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n2", "storage") == supervisor.StateRunning
		})
	})

	t.Run("an unreachable node is 503 naming it", func(t *testing.T) {
		start := time.Now()
		code, _, stderr := n1.env.run("restart", "--node", "n9", "storage")
		if code != 1 || !strings.Contains(stderr, "n9") || !strings.Contains(stderr, "not reachable") {
			t.Errorf("restart --node n9: exit %d, stderr %q", code, stderr)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("answer about a node that is not there took %s, want at once", took)
		}
		base := "http://" + n1.env.vars["OCIS_RUNTIME_ADDR"]
		expectErrorReason(t, "POST", base+"/api/v1/nodes/n9/services/storage/kill", n1.env.configValue("OCIS_RUNTIME_TOKEN"), "", 503, "unavailable", "")
	})

	t.Run("a relayed command with a wrong runtime token is 401", func(t *testing.T) {
		// Whoever reaches NATS (here with the client credentials of
		// ocis.env) still needs the runtime token to command a node.
		nc := n1.natsConn()
		_, err := control.NewNATSClient(nc, "not-the-shared-token").Command(context.Background(), "n2", control.VerbKill, "storage")
		if !errors.Is(err, control.ErrWrongToken) || transport.StatusOf(apierr.CodeOf(err)) != http.StatusUnauthorized {
			t.Errorf("kill with a wrong token: %v, want %v (401)", err, control.ErrWrongToken)
		}
		msg := nats.NewMsg(control.Subject("n2", control.VerbKill))
		msg.Data = []byte(`{"name":"storage"}`)
		resp, err := nc.RequestMsg(msg, 5*time.Second)
		if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "unauthenticated" {
			t.Errorf("kill without a token: %v, error code %q, want unauthenticated", err, resp.Header.Get(micro.ErrorCodeHeader))
		}
		if st := n2.env.status("storage").State; st != supervisor.StateRunning {
			t.Errorf("storage on n2 is %s after refused kills, want running", st)
		}
		// With the right token the same relay works.
		list, err := control.NewNATSClient(nc, n1.env.configValue("OCIS_RUNTIME_TOKEN")).List(context.Background(), "n3")
		if err != nil || stateOn(list, "n3", "storage") != supervisor.StateRunning {
			t.Errorf("relayed list of n3: %v, %+v", err, list)
		}
	})
}
