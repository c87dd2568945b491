package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

	t.Run("a user deleted on node 1 is refused on every node within a second", func(t *testing.T) {
		n1.createUser(token, "alice", "alice-Pass-1")
		alice := n1.login("alice", "alice-Pass-1")
		for _, n := range []*mnode{n2, n3} {
			if status := n.direct("storage", http.MethodGet, "/api/v1/files/", alice); status != http.StatusOK {
				t.Fatalf("alice's listing on %s's storage before the deletion: %d", n.name, status)
			}
		}
		if status := n1.call(http.MethodDelete, "/api/v1/users/alice", token, nil, nil); status != http.StatusNoContent {
			t.Fatalf("delete alice: %d", status)
		}
		deleted := time.Now()
		for _, n := range []*mnode{n2, n3} {
			waitFor(t, "alice refused by storage on "+n.name, 5*time.Second, func() bool {
				return n.direct("storage", http.MethodGet, "/api/v1/files/", alice) == http.StatusUnauthorized
			})
			took := time.Since(deleted)
			t.Logf("deletion on n1 → alice's token refused by storage on %s after %s", n.name, took.Round(time.Millisecond))
			if took > 1500*time.Millisecond {
				t.Errorf("storage on %s refused alice %s after the deletion, want within about a second", n.name, took)
			}
		}
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

// placedOn returns the storage node whose storage holds path of the
// token's user: uploads go through the proxy to the user's node only.
func placedOn(t *testing.T, path, token string, nodes ...*mnode) *mnode {
	t.Helper()
	for _, n := range nodes {
		if n.direct("storage", http.MethodGet, path, token) == http.StatusOK {
			return n
		}
	}
	t.Fatalf("%s is on no storage node", path)
	return nil
}

// usersOnEach creates users until one is placed on each of the storage
// nodes, each with a file; it returns a token per storage node's name.
func usersOnEach(t *testing.T, n1 *mnode, admin string, storages ...*mnode) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for i := 0; len(tokens) < len(storages) && i < 20; i++ {
		name := fmt.Sprintf("user%d", i)
		n1.createUser(admin, name, name+"-Pass-1")
		tok := n1.login(name, name+"-Pass-1")
		upload(t, n1, "/api/v1/files/mine.txt", tok, []byte("file of "+name))
		on := placedOn(t, "/api/v1/files/mine.txt", tok, storages...)
		if _, ok := tokens[on.name]; !ok {
			tokens[on.name] = tok
		}
	}
	if len(tokens) < len(storages) {
		t.Fatalf("20 users were placed on %d of %d storage nodes", len(tokens), len(storages))
	}
	return tokens
}

// waitGone waits until node's services have left n's list --all and
// returns how long that took from since.
func waitGone(t *testing.T, n *mnode, node string, since time.Time) time.Duration {
	t.Helper()
	n.waitList(node+" gone", 3*mnTTL, func(all []supervisor.Status) bool {
		return !slices.Contains(nodesIn(all), node)
	})
	return time.Since(since)
}

// TestMultiNodeLossAndHang: a node killed (SIGKILL) or hung (SIGSTOP)
// leaves every other node's list and routing within TTL + 1 s; users
// placed on the lost node get 503, never 404, and find all their files
// when it returns; users placed elsewhere are unaffected.
func TestMultiNodeLossAndHang(t *testing.T) {
	c, n1, n2, n3 := threeNodes(t)
	admin := n1.login("admin", testAdminPassword)
	tokens := usersOnEach(t, n1, admin, n2, n3)

	t.Run("SIGKILL", func(t *testing.T) {
		n2.signal(syscall.SIGKILL)
		took := waitGone(t, n1, "n2", time.Now())
		t.Logf("SIGKILL of n2 → out of n1's list and routing after %s (TTL %s)", took.Round(time.Millisecond), mnTTL)
		if took > mnTTL+time.Second {
			t.Errorf("n2 left after %s, want within TTL + 1s = %s", took, mnTTL+time.Second)
		}
		if status, _ := n1.get("/api/v1/files/mine.txt", tokens["n3"]); status != http.StatusOK {
			t.Errorf("user placed on n3 while n2 is down: %d, want 200", status)
		}
		if status, _ := n1.get("/api/v1/files/mine.txt", tokens["n2"]); status != http.StatusServiceUnavailable {
			t.Errorf("user placed on n2 while n2 is down: %d, want 503", status)
		}
		c.start(2, "storage", "nats")
		n1.waitList("n2 back", 30*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n2", "storage") == supervisor.StateRunning
		})
		waitFor(t, "n2's user served again", 10*time.Second, func() bool {
			status, body := n1.get("/api/v1/files/mine.txt", tokens["n2"])
			return status == http.StatusOK && strings.HasPrefix(string(body), "file of ")
		})
	})

	t.Run("SIGSTOP then SIGCONT", func(t *testing.T) {
		n3.signal(syscall.SIGSTOP)
		stopped := true
		defer func() {
			if stopped {
				n3.signal(syscall.SIGCONT)
			}
		}()
		took := waitGone(t, n1, "n3", time.Now())
		t.Logf("SIGSTOP of n3 → out of n1's list and routing after %s (TTL %s)", took.Round(time.Millisecond), mnTTL)
		if took > mnTTL+time.Second {
			t.Errorf("n3 left after %s, want within TTL + 1s = %s", took, mnTTL+time.Second)
		}
		if status, _ := n1.get("/api/v1/files/mine.txt", tokens["n3"]); status != http.StatusServiceUnavailable {
			t.Errorf("user placed on n3 while n3 hangs: %d, want 503", status)
		}
		n3.signal(syscall.SIGCONT)
		stopped = false
		resumed := time.Now()
		n1.waitList("n3 back", 30*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n3", "storage") == supervisor.StateRunning
		})
		t.Logf("SIGCONT of n3 → back in n1's list after %s", time.Since(resumed).Round(time.Millisecond))
		waitFor(t, "n3's user served again", 10*time.Second, func() bool {
			status, _ := n1.get("/api/v1/files/mine.txt", tokens["n3"])
			return status == http.StatusOK
		})
	})
}

// TestMultiNodeNATSServerLoss: with one of the three nats servers stopped,
// the node that ran it stays in the registry through the others, and
// routing goes on.
func TestMultiNodeNATSServerLoss(t *testing.T) {
	_, n1, _, n3 := threeNodes(t)
	admin := n1.login("admin", testAdminPassword)
	if code, _, stderr := n3.env.run("kill", "nats"); code != 0 {
		t.Fatalf("kill nats on n3: %s", stderr)
	}
	killed := time.Now()
	// Twice the TTL: n3's key would have expired had its runtime not
	// moved to another server.
	for time.Since(killed) < 2*mnTTL {
		all, ok := n1.listAll()
		if !ok || stateOn(all, "n3", "storage") != supervisor.StateRunning || stateOn(all, "n3", "nats") != supervisor.StateStopped && time.Since(killed) > mnTTL {
			t.Fatalf("n1's list %.1fs after n3's nats server stopped: %+v", time.Since(killed).Seconds(), all)
		}
		time.Sleep(200 * time.Millisecond)
	}
	upload(t, n1, "/api/v1/files/after.txt", admin, []byte("written with one nats server down"))
	if status, body := n1.get("/api/v1/files/after.txt", admin); status != http.StatusOK || string(body) != "written with one nats server down" {
		t.Errorf("download with one nats server down: %d %q", status, body)
	}
	if code, _, stderr := n1.env.run("run", "--node", "n3", "nats"); code != 0 {
		t.Fatalf("run --node n3 nats: %s", stderr)
	}
	n1.waitList("nats on n3 running", 10*time.Second, func(all []supervisor.Status) bool {
		return stateOn(all, "n3", "nats") == supervisor.StateRunning
	})
}

// TestMultiNodeNameClash: a second runtime with a live node's name is
// refused with exit 1 and a message that says what to do; the first keeps
// its entry.
func TestMultiNodeNameClash(t *testing.T) {
	c := newCluster(t, 2)
	c.natsNodes = 1
	n1 := c.start(1)
	n1.waitAnnounced()
	n2 := c.node(2)
	n2.env.vars["OCIS_NODE"] = "n1"
	n2.env.vars["OCIS_RUN_SERVICES"] = "users"
	n2.env.vars["OCIS_NATS_URL"] = c.natsURLs()
	p := n2.env.start("server")
	select {
	case <-p.done:
	case <-time.After(3 * mnTTL):
		t.Fatal("a second runtime named n1 was not refused")
	}
	if code := p.exitCode(); code != 1 || !strings.Contains(p.stderr.String(), `node name "n1" is taken`) {
		t.Errorf("exit %d, stderr:\n%s", code, p.stderr)
	}
	all, ok := n1.listAll()
	if !ok || stateOn(all, "n1", "proxy") != supervisor.StateRunning || len(nodesIn(all)) != 1 {
		t.Errorf("n1's list after the clash: %+v", all)
	}
}

// TestNATSListenerOffLoopbackNeedsCredentials: a nats client listener on
// every interface without credentials stops ocis server before anything
// listens, exit 1, naming what to set.
func TestNATSListenerOffLoopbackNeedsCredentials(t *testing.T) {
	e := newEnv(t)
	// A config without the NATS credentials ocis init writes.
	if err := os.WriteFile(filepath.Join(e.dir, "ocis.env"), []byte("OCIS_JWT_SECRET=\"0123456789abcdef0123456789abcdef\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(e.vars["OCIS_NATS_ADDR"])
	e.vars["OCIS_NATS_ADDR"] = "0.0.0.0:" + port
	code, _, stderr := e.run("server")
	if code != 1 || !strings.Contains(stderr, "not a loopback address and has no credentials") || !strings.Contains(stderr, "OCIS_NATS_USER") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if c, err := net.DialTimeout("tcp", e.vars["OCIS_USERS_HTTP_ADDR"], time.Second); err == nil {
		c.Close()
		t.Error("users listened although the config was refused")
	}
}
