package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/services"
	"github.com/ocis-runtime/ocis/services/users"
)

const (
	// bodyBound is the body timeout these tests give every service:
	// short, so that a test of it takes seconds.
	bodyBound = time.Second
	// cutSlack is how long after the bound a cut may reach the client:
	// the server answers at the bound, the rest is scheduling.
	cutSlack = time.Second
	// slowSenders is how many drip-feeding connections a flood holds.
	slowSenders = 300
	// fastEnough bounds a normal request during a flood.
	fastEnough = 500 * time.Millisecond
)

// withBodyTimeout gives every service the body timeout bodyBound.
func (e *env) withBodyTimeout() {
	for _, name := range services.Catalogue().Names() {
		e.vars[config.EnvName(name, "body-timeout")] = bodyBound.String()
	}
}

// dripResult is what one slow sender saw: the answer's status and error
// code, and how long after its headers it came.
type dripResult struct {
	status int
	code   string
	took   time.Duration
	err    error
}

// drip sends a request announcing length bytes of body: the headers and
// first (the start of the body) at once, then one more byte per interval
// until the body is complete or an answer arrives. sent is called once the
// headers are out. A connection still unanswered five seconds past the
// bound is an error, so a held connection fails the test instead of
// hanging it.
func drip(addr, method, path, token, first string, length int, interval time.Duration, sent func()) dripResult {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		sent()
		return dripResult{err: err}
	}
	defer conn.Close()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: ocis\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", method, path, auth, length, first)
	_, err = io.WriteString(conn, head)
	begin := time.Now()
	sent()
	if err != nil {
		return dripResult{err: err}
	}
	answered := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range length - len(first) {
			select {
			case <-answered:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{'a'}); err != nil {
				return
			}
		}
	})
	defer writer.Wait()
	defer close(answered)
	_ = conn.SetReadDeadline(begin.Add(bodyBound + 5*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(begin)
	if err != nil {
		return dripResult{took: took, err: err}
	}
	defer resp.Body.Close()
	var body wireError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return dripResult{status: resp.StatusCode, code: body.Error.Code, took: took}
}

// flood holds slowSenders connections to addr, each drip-feeding a login
// body of 100000 bytes a byte every 250 ms, and meanwhile times normal
// requests. Every slow sender must be answered 408 request_timeout within
// the bound (plus cutSlack), and every normal request must stay fast.
func flood(t *testing.T, addr string, normal func() error) {
	t.Helper()
	var (
		sent    sync.WaitGroup
		senders sync.WaitGroup
		results = make([]dripResult, slowSenders)
	)
	sent.Add(slowSenders)
	for i := range slowSenders {
		senders.Go(func() {
			results[i] = drip(addr, http.MethodPost, "/api/v1/tokens", "", `{"username":"admin","password":"`, 100000, 250*time.Millisecond, sent.Done)
		})
	}
	sent.Wait()
	var took []time.Duration
	for range 5 {
		begin := time.Now()
		if err := normal(); err != nil {
			t.Errorf("normal request during the flood: %v", err)
		}
		took = append(took, time.Since(begin))
	}
	senders.Wait()

	if slowest := slices.Max(took); slowest > fastEnough {
		t.Errorf("normal requests during the flood took %v, want each under %s", took, fastEnough)
	}
	var cut time.Duration
	wrong := map[string]int{}
	for _, r := range results {
		switch {
		case r.err != nil:
			wrong[fmt.Sprintf("error %v", r.err)]++
		case r.status != http.StatusRequestTimeout || r.code != "request_timeout":
			wrong[fmt.Sprintf("%d %s", r.status, r.code)]++
		case r.took > bodyBound+cutSlack:
			wrong[fmt.Sprintf("408 after %s", r.took.Round(100*time.Millisecond))]++
		}
		cut = max(cut, r.took)
	}
	if len(wrong) > 0 {
		t.Errorf("of %d slow senders, want all answered 408 request_timeout within %s; got %v", slowSenders, bodyBound+cutSlack, wrong)
	}
	t.Logf("%d slow senders cut, the last after %s; normal requests took %v", slowSenders, cut.Round(time.Millisecond), took)
}

// normalRequests returns what a client unaware of a flood at base does:
// read its account with tok, and once in a while log in again. Logins are
// few: every login, even a successful one, spends some of the admin's
// login budget.
func normalRequests(t *testing.T, base, tok, password string) func() error {
	t.Helper()
	c, err := users.NewClient(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	return func() error {
		calls++
		if calls == 3 {
			if _, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: password}); err != nil {
				return fmt.Errorf("login: %w", err)
			}
		}
		if _, err := c.Me(transport.WithBearer(context.Background(), tok), endpoint.Empty{}); err != nil {
			return fmt.Errorf("me: %w", err)
		}
		return nil
	}
}

// TestSlowBodiesAreCutUnderServer drip-feeds logins to `ocis server`,
// through the proxy and to users directly: each is cut with 408 at the
// body timeout while normal requests stay fast. An authenticated slow
// upload, by contrast, may outlast the bound; an anonymous one is refused
// at once.
func TestSlowBodiesAreCutUnderServer(t *testing.T) {
	e := newEnv(t)
	e.withBodyTimeout()
	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	password := e.vars["OCIS_USERS_ADMIN_PASSWORD"]
	tok := strings.TrimPrefix(bearerOf(t, e, e.proxyUsers()), "Bearer ")

	for _, via := range []string{"proxy", "users"} {
		t.Run("logins via "+via, func(t *testing.T) {
			addr := e.vars[config.EnvName(via, "http-addr")]
			flood(t, addr, normalRequests(t, "http://"+addr, tok, password))
		})
	}

	for _, via := range []string{"proxy", "storage"} {
		addr := e.vars[config.EnvName(via, "http-addr")]
		t.Run("authenticated upload via "+via+" outlasts the bound", func(t *testing.T) {
			// 12 bytes 250 ms apart: about three times the bound.
			r := drip(addr, http.MethodPut, "/api/v1/files/slow-"+via+".txt", tok, "", 12, 250*time.Millisecond, func() {})
			if r.err != nil || r.status != http.StatusCreated {
				t.Errorf("slow upload: %d %s %v after %s, want 201", r.status, r.code, r.err, r.took)
			}
			if r.took < 2*bodyBound {
				t.Errorf("slow upload answered after %s, want it to have outlasted the bound of %s", r.took, bodyBound)
			}
		})
		t.Run("anonymous upload via "+via+" is refused at once", func(t *testing.T) {
			r := drip(addr, http.MethodPut, "/api/v1/files/slow.txt", "", "", 100000, 250*time.Millisecond, func() {})
			if r.err != nil || r.status != http.StatusUnauthorized || r.code != "unauthenticated" {
				t.Errorf("anonymous slow upload: %d %s %v, want 401 unauthenticated", r.status, r.code, r.err)
			}
			if r.took > bodyBound/2 {
				t.Errorf("anonymous slow upload answered after %s, want at once", r.took)
			}
		})
	}
}

// TestSlowBodiesAreCutByStandaloneProxy is the same flood against `ocis
// proxy server` in front of `ocis users server`, on each of the proxy's
// data planes: the proxy forwards login bodies as they come, and must not
// hold them past its bound.
func TestSlowBodiesAreCutByStandaloneProxy(t *testing.T) {
	for _, plane := range []string{"auto", "net/http"} {
		t.Run(plane, func(t *testing.T) {
			e := newEnv(t)
			e.withBodyTimeout()
			e.vars["OCIS_JWT_SECRET"] = "a-test-secret-of-enough-length"
			e.vars["OCIS_PROXY_DATA_PLANE"] = plane
			e.start("users", "server")
			e.start("proxy", "server")
			waitHTTP(t, "http://"+e.vars["OCIS_USERS_DEBUG_ADDR"]+"/readyz", http.StatusOK)
			waitHTTP(t, "http://"+e.vars["OCIS_PROXY_DEBUG_ADDR"]+"/readyz", http.StatusOK)
			addr := e.vars["OCIS_PROXY_HTTP_ADDR"]
			c, err := users.NewClient("http://"+addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			password := e.vars["OCIS_USERS_ADMIN_PASSWORD"]
			tok, err := c.Login(context.Background(), users.LoginRequest{Username: "admin", Password: password})
			if err != nil {
				t.Fatal(err)
			}
			flood(t, addr, normalRequests(t, "http://"+addr, tok.Token, password))
		})
	}
}
