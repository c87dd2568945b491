package main_test

// The multi-node harness: several `ocis server` processes on one machine,
// each a node on its own loopback address (127.0.0.2, 127.0.0.3, …) with
// the default ports, its own base data path and the first node's ocis.env,
// the nats services clustered by routes. Linux routes all of 127.0.0.0/8
// to lo, so no setup is needed (/work/shared/MULTINODE-TESTING.md, layer
// 2). Tests that use it must not call t.Parallel: the addresses are fixed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services"
)

// Default ports of the services, as their descriptors declare them: every
// node listens on them, each on its own address.
const (
	mnRuntimePort     = 9250
	mnNATSClusterPort = 9235
)

// mnTTL is the registry TTL of multi-node tests: short, so that a lost
// node leaves within seconds.
const mnTTL = 3 * time.Second

// cluster is a set of nodes started by one test.
type cluster struct {
	t *testing.T
	// base is the last byte of the first node's address: node i (from 1)
	// is 127.0.0.<base+i-1>.
	base int
	// size is how many nodes the cluster is for.
	size int
	// natsNodes are the first nodes whose nats servers form the cluster
	// (every one's routes list them all); size unless a test sets fewer
	// before starting a node. With one, that server runs alone.
	natsNodes int
	nodes     map[int]*mnode
	// envFile is the first node's ocis.env, copied to every node.
	envFile string
	// ips, when set before a node is prepared, are the nodes' addresses
	// instead of the loopback block (one network namespace per node).
	ips []string
}

// mnode is one node of a cluster: its env (data dir and variables) and,
// while it runs, its process.
type mnode struct {
	c    *cluster
	i    int
	name string
	ip   string
	env  *env
	proc *proc
}

// newCluster prepares a cluster of size nodes. It takes a block of
// loopback addresses no other test process on the machine holds (a lock
// file per block, so two engineers' test runs never share ports) and
// writes the first node's ocis.env with `ocis init`.
func newCluster(t *testing.T, size int) *cluster {
	t.Helper()
	c := &cluster{t: t, size: size, natsNodes: size, nodes: map[int]*mnode{}}
	c.base = lockLoopbackBlock(t, size)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, vars: map[string]string{"OCIS_BASE_DATA_PATH": dir}}
	if code, _, stderr := e.run("init", "--admin-password", testAdminPassword); code != 0 {
		t.Fatalf("ocis init: exit %d: %s", code, stderr)
	}
	c.envFile = filepath.Join(dir, "ocis.env")
	return c
}

// lockLoopbackBlock returns the first address byte of a block of size
// loopback addresses, from 127.0.0.2 on, whose lock it holds until the test
// ends.
func lockLoopbackBlock(t *testing.T, size int) int {
	t.Helper()
	for base := 2; base+size <= 250; base += size {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("ocis-multinode-127.0.0.%d.lock", base))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if !blockFree(base, size) {
			f.Close()
			continue
		}
		t.Cleanup(func() { f.Close() })
		return base
	}
	t.Fatal("no free block of loopback addresses")
	return 0
}

// blockFree reports whether nobody listens on the runtime port of any
// address of the block (an ocis left running by hand, say).
func blockFree(base, size int) bool {
	for i := range size {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", base+i, mnRuntimePort))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// ip is node i's address.
func (c *cluster) ip(i int) string {
	if c.ips != nil {
		return c.ips[i-1]
	}
	return fmt.Sprintf("127.0.0.%d", c.base+i-1)
}

// node returns node i (from 1), prepared but not started: its data dir
// holds the copied ocis.env, and its variables bind every listener on its
// address with the default ports. Change n.env.vars before start to differ.
func (c *cluster) node(i int) *mnode {
	c.t.Helper()
	if n, ok := c.nodes[i]; ok {
		return n
	}
	t := c.t
	n := &mnode{c: c, i: i, name: fmt.Sprintf("n%d", i), ip: c.ip(i)}
	dir := t.TempDir()
	copyFile(t, c.envFile, filepath.Join(dir, "ocis.env"))
	vars := map[string]string{
		"OCIS_BASE_DATA_PATH": dir,
		"OCIS_NODE":           n.name,
		"OCIS_RUNTIME_ADDR":   net.JoinHostPort(n.ip, fmt.Sprint(mnRuntimePort)),
		"OCIS_REGISTRY_TTL":   mnTTL.String(),
		// Nothing listens on every interface, but if a service did, this
		// is the host other nodes would dial.
		"OCIS_ADVERTISE_HOST":    n.ip,
		"OCIS_USERS_BCRYPT_COST": "4",
		"OCIS_LOG_LEVEL":         "debug",
		// ocis init stored only the hash; tests log in with the password.
		"OCIS_USERS_ADMIN_PASSWORD": testAdminPassword,
	}
	if c.natsNodes > 1 {
		vars["OCIS_NATS_CLUSTER_ADDR"] = net.JoinHostPort(n.ip, fmt.Sprint(mnNATSClusterPort))
		vars["OCIS_NATS_ROUTES"] = c.routes()
	}
	for _, d := range services.Catalogue() {
		vars[primaryAddrEnv(d.Name)] = withHost(d.HTTPAddr, n.ip)
		vars[config.EnvName(d.Name, "debug-addr")] = withHost(d.DebugAddr, n.ip)
	}
	n.env = &env{t: t, dir: dir, vars: vars}
	c.nodes[i] = n
	return n
}

// routes lists the route listener of every nats node.
func (c *cluster) routes() string {
	out := make([]string, 0, c.natsNodes)
	for i := 1; i <= c.natsNodes; i++ {
		out = append(out, "nats-route://"+net.JoinHostPort(c.ip(i), fmt.Sprint(mnNATSClusterPort)))
	}
	return strings.Join(out, ",")
}

// natsURLs lists the client listener of every nats node: what a node
// without the nats service sets as OCIS_NATS_URL.
func (c *cluster) natsURLs() string {
	out := make([]string, 0, c.natsNodes)
	for i := 1; i <= c.natsNodes; i++ {
		out = append(out, "nats://"+net.JoinHostPort(c.ip(i), "9233"))
	}
	return strings.Join(out, ",")
}

// start starts node i running services (all default services when none
// are named; a node without nats joins through every node's nats) and
// waits until its runtime reports every one of them running.
func (c *cluster) start(i int, svcs ...string) *mnode {
	c.t.Helper()
	n := c.node(i)
	if len(svcs) > 0 {
		n.env.vars["OCIS_RUN_SERVICES"] = strings.Join(svcs, ",")
		if !slices.Contains(svcs, "nats") {
			n.env.vars["OCIS_NATS_URL"] = c.natsURLs()
		}
	}
	n.proc = n.env.start("server")
	n.waitReady()
	return n
}

// waitAnnounced waits until the node's record is in the registry bucket:
// the other nodes can see it, and a later runtime of the same name is the
// one refused. start does not wait for it: the first node of a cluster
// has no bucket until a quorum of nats servers runs.
func (n *mnode) waitAnnounced() {
	n.c.t.Helper()
	via := n
	if n.env.vars["OCIS_NATS_URL"] != "" {
		via = n.c.node(1)
	}
	nc := via.natsConn()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		n.c.t.Fatal(err)
	}
	waitFor(n.c.t, n.name+" in the registry", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, registry.BucketName)
		if err != nil {
			return false
		}
		_, err = kv.Get(ctx, n.name)
		return err == nil
	})
}

// waitReady waits until the node's runtime answers /readyz with 200: every
// service it runs is running.
func (n *mnode) waitReady() {
	n.c.t.Helper()
	waitHTTP(n.c.t, "http://"+n.env.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
}

// withHost replaces the host of addr.
func withHost(addr, host string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return net.JoinHostPort(host, port)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// addr is the address of service on the node.
func (n *mnode) addr(service string) string { return n.env.vars[primaryAddrEnv(service)] }

// listAll runs `ocis list --all --json` on the node; ok is false when the
// command failed (the runtime not up yet).
func (n *mnode) listAll() ([]supervisor.Status, bool) {
	code, stdout, _ := n.env.run("list", "--all", "--json")
	if code != 0 {
		return nil, false
	}
	var out []supervisor.Status
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		return nil, false
	}
	return out, true
}

// waitList waits until `ocis list --all` on the node satisfies cond and
// returns that listing.
func (n *mnode) waitList(what string, timeout time.Duration, cond func([]supervisor.Status) bool) []supervisor.Status {
	n.c.t.Helper()
	var last []supervisor.Status
	waitFor(n.c.t, fmt.Sprintf("list --all on %s: %s", n.name, what), timeout, func() bool {
		all, ok := n.listAll()
		last = all
		return ok && cond(all)
	})
	return last
}

// stateOn returns the state list shows for service on node, "" when it
// shows none.
func stateOn(all []supervisor.Status, node, service string) supervisor.State {
	for _, s := range all {
		if s.Node == node && s.Name == service {
			return s.State
		}
	}
	return ""
}

// nodesIn returns the nodes a listing shows, sorted.
func nodesIn(all []supervisor.Status) []string {
	var out []string
	for _, s := range all {
		if !slices.Contains(out, s.Node) {
			out = append(out, s.Node)
		}
	}
	slices.Sort(out)
	return out
}

// signal sends sig to the node's process (SIGKILL, SIGSTOP, SIGCONT).
func (n *mnode) signal(sig syscall.Signal) {
	n.c.t.Helper()
	if err := n.proc.cmd.Process.Signal(sig); err != nil {
		n.c.t.Fatalf("signal %s to %s: %v", sig, n.name, err)
	}
	if sig == syscall.SIGKILL {
		<-n.proc.done
	}
}

// login logs in through the node's proxy and returns the token.
func (n *mnode) login(user, password string) string {
	n.c.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	status := n.call(http.MethodPost, "/api/v1/tokens", "", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)), &out)
	if status != http.StatusOK || out.Token == "" {
		n.c.t.Fatalf("login %s through %s: status %d", user, n.name, status)
	}
	return out.Token
}

// call sends a request to the node's proxy and decodes a JSON answer into
// out (when not nil); it returns the status, 0 when nothing answered.
func (n *mnode) call(method, path, token string, body io.Reader, out any) int {
	n.c.t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr("proxy")+path, body)
	if err != nil {
		n.c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// get downloads path through the node's proxy.
func (n *mnode) get(path, token string) (int, []byte) {
	n.c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.addr("proxy")+path, nil)
	if err != nil {
		n.c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// put uploads data to path through the node's proxy.
func (n *mnode) put(path, token string, data []byte) int {
	n.c.t.Helper()
	return n.call(http.MethodPut, path, token, bytes.NewReader(data), nil)
}

// natsConn connects the test to the node's nats server with the client
// credentials of ocis.env; it is closed when the test ends.
func (n *mnode) natsConn() *nats.Conn {
	n.c.t.Helper()
	nc, err := nats.Connect("nats://"+n.addr("nats"),
		nats.UserInfo(n.env.configValue("OCIS_NATS_USER"), n.env.configValue("OCIS_NATS_PASSWORD")), nats.Timeout(5*time.Second))
	if err != nil {
		n.c.t.Fatalf("connect to nats on %s: %v", n.name, err)
	}
	n.c.t.Cleanup(nc.Close)
	return nc
}

// direct sends a request straight to service on the node, bypassing every
// proxy, and returns the status (0 when nothing answered).
func (n *mnode) direct(service, method, path, token string) int {
	n.c.t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr(service)+path, nil)
	if err != nil {
		n.c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// createUser creates an account through the node's proxy as admin.
func (n *mnode) createUser(adminToken, name, password string) {
	n.c.t.Helper()
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, name, password)
	if status := n.call(http.MethodPost, "/api/v1/users", adminToken, strings.NewReader(body), nil); status != http.StatusCreated {
		n.c.t.Fatalf("create user %s through %s: status %d", name, n.name, status)
	}
}
