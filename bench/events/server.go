package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/services"
)

const (
	adminPW = "bench-Pass-1"
	secret  = "bench-secret-0123456789abcdefghij"
)

// server is one `ocis server` under test: a single node on 127.0.0.1 with
// free ports and a data dir of its own.
type server struct {
	name    string
	env     []string // what sets it apart (OCIS_EXCLUDE_RUN_SERVICES)
	ch      *benchkit.Child
	logPath string
	proxy   string            // the proxy's base URL
	debug   map[string]string // debug base URL per service
	token   string            // the admin's bearer token
	runs    []run
}

// start runs `ocis server` for s and waits until an upload through its
// proxy succeeds.
func (b *bench) start(ctx context.Context, s *server) error {
	cat := services.Catalogue()
	free, err := benchkit.FreeAddrs(1 + 2*len(cat))
	if err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "data-"+s.name)
	env := append(b.env[:len(b.env):len(b.env)], s.env...)
	env = append(env,
		"OCIS_BASE_DATA_PATH="+dir, "OCIS_LOG_LEVEL=warn", "OCIS_JWT_SECRET="+secret,
		"OCIS_USERS_ADMIN_PASSWORD="+adminPW, "OCIS_USERS_BCRYPT_COST=4",
		"OCIS_NODE=bench-"+strings.ReplaceAll(s.name, "+", "-"), "OCIS_RUNTIME_ADDR="+free[0])
	if b.cfg.pprofDir != "" {
		env = append(env, "OCIS_STORAGE_DEBUG_PPROF=true")
	}
	s.debug = map[string]string{}
	for i, d := range cat {
		env = append(env, config.EnvName(d.Name, benchkit.PrimaryAddrFlag(d))+"="+free[1+2*i], config.EnvName(d.Name, "debug-addr")+"="+free[2+2*i])
		s.debug[d.Name] = "http://" + free[2+2*i]
		if d.Name == "proxy" {
			s.proxy = "http://" + free[1+2*i]
		}
	}
	s.logPath = filepath.Join(b.tmp, "ocis-"+s.name+".log")
	if s.ch, err = b.kids.StartLogged("ocis server "+s.name, s.logPath, env, b.ocis, "server"); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	if err := benchkit.AwaitStatus(ctx, hc, "http://"+free[0]+"/readyz", nil, http.StatusOK, 20*time.Millisecond, 40*time.Second, s.ch.Done()); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, benchkit.FileTail(s.logPath))
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		s.token, err = benchkit.Login(ctx, hc, s.proxy, "admin", adminPW)
		if err == nil {
			_, err = put(ctx, hc, s.proxy, s.token, "/api/v1/files/bench/first.txt", []byte("first"))
		}
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%w; log:\n%s", err, benchkit.FileTail(s.logPath))
	}
	fmt.Fprintf(b.log, "ocis server (%s) ready\n", s.name)
	return nil
}

// put uploads data to path through the proxy at base and returns when the
// answer has been read.
func put(ctx context.Context, hc *http.Client, base, tok, path string, data []byte) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+path, bytes.NewReader(data))
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	answered := time.Now()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return answered, fmt.Errorf("upload %s through the proxy: status %d", path, resp.StatusCode)
	}
	return answered, nil
}

// metric sums the samples of the counter or gauge name whose labels
// contain every one of labels ("result=\"ack\""), from the Prometheus text
// at base/metrics. A metric not exposed is 0.
func metric(ctx context.Context, hc *http.Client, base, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: status %d", base, resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbl string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with name
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				ok = false
			}
		}
		fields := strings.Fields(rest)
		if !ok || len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", name, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
