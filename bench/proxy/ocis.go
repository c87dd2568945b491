package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// Admin account of the benchmark's ocis; the users service requires
// letters and digits.
const (
	adminUser     = "admin"
	adminPassword = "bench-Pass-1"
)

// startGrace bounds one start to ready, and one stop after SIGTERM (a
// service drains for up to its shutdown timeout, 30s by default).
const startGrace = 40 * time.Second

// build builds the real binary with the go command that runs this
// benchmark, from the module root, into the temporary directory.
func (b *bench) build(ctx context.Context) error {
	b.ocis = filepath.Join(b.tmp, "ocis")
	return benchkit.Build(ctx, b.log, b.ocis, "./cmd/ocis")
}

// ocisAddrs are the listeners of one `ocis server`: the runtime's control
// API and, per service of the catalogue, its HTTP and debug address.
type ocisAddrs struct {
	runtime string
	http    map[string]string
	debug   map[string]string
}

// newOcisAddrs picks free 127.0.0.1 ports for every listener.
func newOcisAddrs() (ocisAddrs, error) {
	cat := services.Catalogue()
	free, err := benchkit.FreeAddrs(1 + 2*len(cat))
	if err != nil {
		return ocisAddrs{}, err
	}
	a := ocisAddrs{runtime: free[0], http: map[string]string{}, debug: map[string]string{}}
	for i, d := range cat {
		a.http[d.Name] = free[1+2*i]
		a.debug[d.Name] = free[2+2*i]
	}
	for _, name := range []string{proxy.Name, users.Name, storage.Name} {
		if a.http[name] == "" {
			return ocisAddrs{}, fmt.Errorf("service %s is not in the catalogue", name)
		}
	}
	return a, nil
}

// ocisServer is one running ocis process: `ocis server`, or one service
// alone (`ocis <service> server`).
type ocisServer struct {
	name    string
	addrs   ocisAddrs
	level   string
	logPath string
	ch      *benchkit.Child
	once    sync.Once
	stopErr error
}

// jwtSecret signs the tokens of every ocis process of the benchmark, so
// that separate processes accept each other's tokens.
const jwtSecret = "bench-secret-0123456789abcdefghij"

// ocisEnv is the environment of an ocis process on data dir data with
// every listener on addrs.
func (b *bench) ocisEnv(data string, addrs ocisAddrs, level string, pprof bool, extra ...string) []string {
	env := append(b.env[:len(b.env):len(b.env)],
		config.EnvName("", "base-data-path")+"="+data,
		config.EnvName("", "log-level")+"="+level,
		config.EnvName("", "jwt-secret")+"="+jwtSecret,
		config.EnvName(users.Name, "admin-password")+"="+adminPassword,
		config.EnvName(users.Name, "bcrypt-cost")+"=4",
		config.EnvName("runtime", "addr")+"="+addrs.runtime,
	)
	for _, d := range services.Catalogue() {
		env = append(env,
			config.EnvName(d.Name, benchkit.PrimaryAddrFlag(d))+"="+addrs.http[d.Name],
			config.EnvName(d.Name, "debug-addr")+"="+addrs.debug[d.Name])
		if pprof {
			env = append(env, config.EnvName(d.Name, "debug.pprof")+"=true")
		}
	}
	return append(env, extra...)
}

// startOcis starts `ocis server` on the benchmark's data dir with every
// listener on addrs, logging at level to a file, and waits for the
// runtime's /readyz. The first start on the data dir runs `ocis init`
// itself; the admin password of the environment wins over the one init
// generates.
func (b *bench) startOcis(ctx context.Context, addrs ocisAddrs, level string, pprof bool) (*ocisServer, error) {
	return b.startProcess(ctx, "ocis server", []string{"server"}, filepath.Join(b.tmp, "data"), addrs, level, pprof,
		"http://"+addrs.runtime+"/readyz")
}

// startService starts `ocis <name> server`, one service alone in its
// process, on the data dir data, and waits for its /readyz. A standalone
// proxy routes to the other services at the addresses of the environment
// (addrs), so services started this way find each other. extra is added to
// its environment.
func (b *bench) startService(ctx context.Context, name, data string, addrs ocisAddrs, level string, pprof bool, extra ...string) (*ocisServer, error) {
	return b.startProcess(ctx, "ocis "+name+" server", []string{name, "server"}, data, addrs, level, pprof,
		"http://"+addrs.debug[name]+"/readyz", extra...)
}

func (b *bench) startProcess(ctx context.Context, name string, args []string, data string, addrs ocisAddrs, level string, pprof bool, readyURL string, extra ...string) (*ocisServer, error) {
	logPath := filepath.Join(b.tmp, strings.ReplaceAll(name, " ", "-")+"-"+level+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ocis log: %w", err)
	}
	// The child writes its log straight to the file: through a pipe, this
	// process would copy every line and its CPU would count against ocis.
	defer logFile.Close()
	cmd := exec.Command(b.ocis, args...)
	cmd.Env = b.ocisEnv(data, addrs, level, pprof, extra...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	ch, err := b.kids.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	s := &ocisServer{name: name, addrs: addrs, level: level, logPath: logPath, ch: ch}
	t0 := time.Now()
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	if err := benchkit.AwaitStatus(ctx, client, readyURL, nil, http.StatusOK, 20*time.Millisecond, startGrace, ch.Done()); err != nil {
		ch.Kill()
		<-ch.Done()
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w; log:\n%s", name, err, benchkit.FileTail(logPath))
	}
	fmt.Fprintf(b.log, "%s (log level %s) ready in %s\n", name, level, time.Since(t0).Round(time.Millisecond))
	return s, nil
}

// withListeners is a copy of a with service name on the addresses http and
// debug: a second process of that service beside the first.
func (a ocisAddrs) withListeners(name, http, debug string) ocisAddrs {
	c := ocisAddrs{runtime: a.runtime, http: map[string]string{}, debug: map[string]string{}}
	for k, v := range a.http {
		c.http[k] = v
	}
	for k, v := range a.debug {
		c.debug[k] = v
	}
	c.http[name], c.debug[name] = http, debug
	return c
}

// url is the base URL of service name.
func (s *ocisServer) url(name string) string { return "http://" + s.addrs.http[name] }

// stop stops the server with SIGTERM, once; later calls return the first
// one's result.
func (s *ocisServer) stop() error {
	s.once.Do(func() {
		if _, err := s.ch.Stop(syscall.SIGTERM, startGrace); err != nil {
			s.stopErr = fmt.Errorf("%s: %w; log:\n%s", s.name, err, benchkit.FileTail(s.logPath))
		}
	})
	return s.stopErr
}

// usersName is the users service, which issues the benchmark's tokens.
const usersName = users.Name

// login returns a bearer token of the admin from the users service at
// base.
func login(ctx context.Context, hc *http.Client, base string) (string, error) {
	return benchkit.Login(ctx, hc, base, adminUser, adminPassword)
}

// withToken is ctx carrying token for the clients.
func withToken(ctx context.Context, token string) context.Context {
	return transport.WithBearer(ctx, token)
}
