package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/services/users"
)

// TestPasswordFloodStarvesNoOne is the fourth hole of the hardening issue:
// 32 clients guessing passwords made an authenticated GET 200× slower. Now
// failures are budgeted per name and per address (429 with Retry-After,
// held for a moment so a flood costs no CPU) and bcrypt runs in bounded
// slots, so authenticated traffic keeps its pace and another user still
// logs in. Bcrypt runs at its default cost here, as in production.
func TestPasswordFloodStarvesNoOne(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_USERS_BCRYPT_COST"] = "10"
	e.vars["OCIS_LOG_LEVEL"] = "warn"
	e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	c := e.proxyUsers()
	admin := e.adminCtx(c)
	if _, err := c.CreateUser(admin, users.CreateUserRequest{Username: "alice", Password: "alice-pass-1"}); err != nil {
		t.Fatal(err)
	}
	adminToken := bearerOf(t, e, c)
	proxy := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]
	client := &http.Client{Timeout: 10 * time.Second}

	// p99 of n authenticated GETs, one after another.
	p99 := func(n int) time.Duration {
		t.Helper()
		took := make([]time.Duration, 0, n)
		for range n {
			req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/users/me", nil)
			req.Header.Set("Authorization", adminToken)
			begin := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took = append(took, time.Since(begin))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("authenticated GET: %d", resp.StatusCode)
			}
		}
		slices.Sort(took)
		return took[len(took)*99/100]
	}
	login := func(user, password, from string) (*http.Response, time.Duration) {
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
		req, _ := http.NewRequest(http.MethodPost, proxy+"/api/v1/tokens", bytes.NewBufferString(body))
		req.Header.Set("X-Forwarded-For", from)
		begin := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return nil, 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, time.Since(begin)
	}

	p99(50) // warm up connections and caches
	idle := p99(300)

	// The flood: 32 clients guessing the admin's password, each from an
	// address of its own (so the budgets admit up to the name-wide cap and
	// bcrypt really runs flat out), for a bounded time.
	ctx, stop := context.WithTimeout(context.Background(), 6*time.Second)
	defer stop()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		retry    []string
		wg       sync.WaitGroup
	)
	for i := range 32 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil && n < 1000; n++ {
				resp, _ := login("admin", "guess-"+strconv.Itoa(i*1000+n), "198.51.100."+strconv.Itoa(10+i))
				if resp == nil {
					return
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests && len(retry) < 1 {
					retry = append(retry, resp.Header.Get("Retry-After"))
				}
				mu.Unlock()
			}
		})
	}
	// Measured while the flood runs, its first burst of bcrypts included.
	flooded := p99(300)
	// Another user, from another address, logs in as fast as ever.
	resp, took := login("alice", "alice-pass-1", "198.51.100.7")
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Errorf("alice's login during the flood: %+v", resp)
	}
	if took > time.Second {
		t.Errorf("alice's login took %s during the flood", took)
	}
	// From an attacker's address the admin's name is locked out for now,
	// even with the right password.
	resp, _ = login("admin", testAdminPassword, "198.51.100.10")
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the admin's login from an attacker's address: %+v, want 429 with Retry-After", resp)
	}
	stop()
	wg.Wait()

	t.Logf("authenticated GET p99: idle %s, during the flood %s; flood answers %v", idle, flooded, statuses)
	// Sub-millisecond figures jitter by scheduling alone: the bound is 2×
	// the idle p99, but never below 2 ms.
	if limit := max(2*idle, 2*time.Millisecond); flooded > limit {
		t.Errorf("authenticated GET p99 rose from %s to %s during the flood (limit %s)", idle, flooded, limit)
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Errorf("the flood was never refused: %v", statuses)
	}
	// The name-wide budget is ten times the per-address one (10): no more
	// guesses at one name reach bcrypt, however many addresses send them.
	if n := statuses[http.StatusUnauthorized]; n > 100 {
		t.Errorf("%d guesses reached bcrypt, want no more than the budgets allow (100)", n)
	}
	for code := range statuses {
		if code >= 500 {
			t.Errorf("the flood got %d answers of %d", statuses[code], code)
		}
	}
	if len(retry) == 0 || retry[0] == "" || retry[0] == "0" {
		t.Errorf("429 without a Retry-After: %q", retry)
	}
}
