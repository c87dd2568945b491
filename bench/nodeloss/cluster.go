package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/services"
)

// Default ports every node listens on, each on its own address.
const (
	runtimePort     = 9250
	natsClusterPort = 9235
	adminPassword   = "bench-Pass-1"
	startGrace      = 40 * time.Second
)

// node is one `ocis server` of the cluster: its address, data dir and
// environment, and while it runs its process.
type node struct {
	i       int
	name    string
	ip      string
	dir     string
	env     []string
	addrs   map[string]string // primary listener per service
	logPath string
	ch      *benchkit.Child
}

func (n *node) runtimeURL() string {
	return "http://" + net.JoinHostPort(n.ip, fmt.Sprint(runtimePort))
}

// lockBlock holds the benchmark's lock file of its address block until the
// process exits, and checks nobody listens on the nodes' runtime port.
func (b *bench) lockBlock() error {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("ocis-bench-nodeloss-127.0.0.%d.lock", b.cfg.base))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	// f stays open (and locked) until the process exits.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another nodeloss benchmark holds %s: %w", path, err)
	}
	for i := range 3 {
		addr := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", b.cfg.base+i), fmt.Sprint(runtimePort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s is taken (an ocis left running?): %w", addr, err)
		}
		ln.Close()
	}
	return nil
}

// newNodes writes the first node's ocis.env with `ocis init` and prepares
// three nodes, each with a copy of it: one shared set of secrets.
func (b *bench) newNodes(ctx context.Context) ([]*node, string, error) {
	dir0 := filepath.Join(b.tmp, "init")
	env := append(b.env[:len(b.env):len(b.env)], "OCIS_BASE_DATA_PATH="+dir0)
	if _, _, err := b.kids.Run(ctx, "ocis init", 30*time.Second, env, b.ocis, "init", "--admin-password", adminPassword); err != nil {
		return nil, "", err
	}
	envFile := filepath.Join(dir0, "ocis.env")
	values, err := config.ReadFile(envFile)
	if err != nil {
		return nil, "", err
	}
	token := values["OCIS_RUNTIME_TOKEN"]
	if token == "" {
		return nil, "", fmt.Errorf("%s holds no OCIS_RUNTIME_TOKEN", envFile)
	}
	raw, err := os.ReadFile(envFile)
	if err != nil {
		return nil, "", err
	}
	var routes []string
	for i := range 3 {
		routes = append(routes, "nats-route://"+net.JoinHostPort(fmt.Sprintf("127.0.0.%d", b.cfg.base+i), fmt.Sprint(natsClusterPort)))
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		n := &node{i: i + 1, name: fmt.Sprintf("n%d", i+1), ip: fmt.Sprintf("127.0.0.%d", b.cfg.base+i), addrs: map[string]string{}}
		n.dir = filepath.Join(b.tmp, n.name)
		n.logPath = filepath.Join(b.tmp, n.name+".log")
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(filepath.Join(n.dir, "ocis.env"), raw, 0o600); err != nil {
			return nil, "", err
		}
		n.env = append(b.env[:len(b.env):len(b.env)],
			"OCIS_BASE_DATA_PATH="+n.dir,
			"OCIS_NODE="+n.name,
			"OCIS_RUNTIME_ADDR="+net.JoinHostPort(n.ip, fmt.Sprint(runtimePort)),
			"OCIS_REGISTRY_TTL="+b.cfg.ttl.String(),
			"OCIS_ADVERTISE_HOST="+n.ip,
			"OCIS_USERS_BCRYPT_COST=4",
			"OCIS_LOG_LEVEL=info",
			// ocis init stored only the hash; the benchmark logs in with
			// the password.
			"OCIS_USERS_ADMIN_PASSWORD="+adminPassword,
			"OCIS_NATS_CLUSTER_ADDR="+net.JoinHostPort(n.ip, fmt.Sprint(natsClusterPort)),
			"OCIS_NATS_ROUTES="+strings.Join(routes, ","),
		)
		for _, d := range services.Catalogue() {
			primary, addr := "http-addr", d.HTTPAddr
			if d.Name == "nats" {
				primary = "addr"
			}
			n.addrs[d.Name] = withHost(addr, n.ip)
			n.env = append(n.env,
				config.EnvName(d.Name, primary)+"="+n.addrs[d.Name],
				config.EnvName(d.Name, "debug-addr")+"="+withHost(d.DebugAddr, n.ip))
		}
		nodes[i] = n
	}
	return nodes, token, nil
}

func withHost(addr, host string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return net.JoinHostPort(host, port)
}

// start starts the node's `ocis server` with svcs and waits for its
// runtime's /readyz: every service it runs is running.
func (b *bench) start(ctx context.Context, n *node, svcs ...string) error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(b.ocis, "server")
	cmd.Env = append(n.env[:len(n.env):len(n.env)], "OCIS_RUN_SERVICES="+strings.Join(svcs, ","))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if n.ch, err = b.kids.Start("ocis server "+n.name, cmd); err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	if err := benchkit.AwaitStatus(ctx, hc, n.runtimeURL()+"/readyz", nil, http.StatusOK, 20*time.Millisecond, startGrace, n.ch.Done()); err != nil {
		return fmt.Errorf("%s: %w; log:\n%s", n.name, err, benchkit.FileTail(n.logPath))
	}
	return nil
}

// status is one entry of `GET /api/v1/services?all=1`.
type status struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Node  string `json:"node"`
}

// listAll asks n's control API for every node's services.
func listAll(ctx context.Context, hc *http.Client, n *node, token string) ([]status, error) {
	var out []status
	code, err := call(ctx, hc, http.MethodGet, n.runtimeURL()+"/api/v1/services?all=1", token, nil, &out)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("list on %s: status %d", n.name, code)
	}
	return out, err
}

// stateOn is the state the listing shows for service on node, "" when it
// shows none.
func stateOn(all []status, node, service string) string {
	for _, s := range all {
		if s.Node == node && s.Name == service {
			return s.State
		}
	}
	return ""
}

// listsNode reports whether the listing shows any service of node.
func listsNode(all []status, node string) bool {
	for _, s := range all {
		if s.Node == node {
			return true
		}
	}
	return false
}

// apiError is the error body of every service.
type apiError struct {
	Error struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// call sends a request with a bearer token (none when empty) and decodes
// a JSON answer into out (when not nil, and whatever the status). It
// returns the status; an error only when nothing answered.
func call(ctx context.Context, hc *http.Client, method, url, token string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

// waitFor polls cond every 20ms until it holds, ctx ends or timeout passes.
func waitFor(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
