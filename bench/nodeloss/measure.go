package main

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// filePath is the file of the user placed on node 2.
const filePath = "/api/v1/files/bench/mine.txt"

// placedUser is a user whose files live on node 2's storage.
type placedUser struct{ name, token string }

func (b *bench) measure(ctx context.Context) error {
	if err := b.lockBlock(); err != nil {
		return err
	}
	b.ocis = b.tmp + "/ocis"
	if err := benchkit.Build(ctx, b.log, b.ocis, "./cmd/ocis"); err != nil {
		return err
	}
	nodes, runtimeToken, err := b.newNodes(ctx)
	if err != nil {
		return err
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	t0 := time.Now()
	for _, s := range []struct {
		n    *node
		svcs []string
	}{{n1, []string{"proxy", "users", "nats"}}, {n2, []string{"storage", "nats"}}, {n3, []string{"storage", "nats"}}} {
		if err := b.start(ctx, s.n, s.svcs...); err != nil {
			return err
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	if err := waitFor(ctx, "storage running on n2 and n3 in n1's list", 60*time.Second, func() bool {
		all, err := listAll(ctx, hc, n1, runtimeToken)
		return err == nil && stateOn(all, "n2", "storage") == "running" && stateOn(all, "n3", "storage") == "running"
	}); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "three nodes up in %s\n", time.Since(t0).Round(time.Millisecond))
	u, err := b.userOnN2(ctx, hc, n1, n2)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.log, "%s is placed on n2\n", u.name)

	load0, _ := benchkit.LoadAverage()
	fmt.Fprintf(b.out, "node loss: 3 loopback nodes (%s, %s, %s), nats clustered on all, proxy+users on n1, storage on n2 and n3; OCIS_REGISTRY_TTL=%s; %d SIGKILLs of n2, polled every 10ms from n1\n",
		n1.ip, n2.ip, n3.ip, b.cfg.ttl, b.cfg.rounds)
	var regGone, routeGone, back []float64
	for round := range b.cfg.rounds {
		r, err := b.killRound(ctx, hc, n1, n2, u, runtimeToken)
		if err != nil {
			return fmt.Errorf("round %d: %w", round+1, err)
		}
		regGone = append(regGone, ms(r.registry))
		routeGone = append(routeGone, ms(r.routing))
		back = append(back, ms(r.back))
		note := ""
		if r.odd > 0 {
			note = fmt.Sprintf("  (%d answers to n2's user were neither 200 nor 503)", r.odd)
		}
		fmt.Fprintf(b.out, "  round %2d: out of n1's registry %s, out of routing (503 placement.instance_down) %s; restarted and served again in %s%s\n",
			round+1, benchkit.CoarseMillis(r.registry), benchkit.CoarseMillis(r.routing), benchkit.CoarseMillis(r.back), note)
	}
	load1, _ := benchkit.LoadAverage()
	target := b.cfg.ttl + time.Second
	fmt.Fprintf(b.out, "summary (load average %.2f at start, %.2f at end):\n", load0, load1)
	for _, f := range []struct {
		what string
		xs   []float64
	}{{"SIGKILL → out of n1's registry (list --all)", regGone}, {"SIGKILL → out of n1's routing", routeGone}} {
		s := benchkit.SpreadOf(f.xs)
		fmt.Fprintf(b.out, "  %s: p50 %.0fms (min %.0fms, max %.0fms, n=%d); target every kill <= TTL + 1s = %s:%s\n",
			f.what, s.Median, s.Min, s.Max, s.N, target, benchkit.Verdict(s.Max <= ms(target)))
	}
	s := benchkit.SpreadOf(back)
	fmt.Fprintf(b.out, "  restart of n2 → its user served again through n1: p50 %.0fms (min %.0fms, max %.0fms) (no target)\n", s.Median, s.Min, s.Max)
	for _, n := range nodes {
		if _, err := n.ch.Stop(syscall.SIGTERM, startGrace); err != nil {
			return fmt.Errorf("stop %s: %w; log:\n%s", n.name, err, benchkit.FileTail(n.logPath))
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// roundResult is what one kill of n2 measured.
type roundResult struct {
	registry, routing, back time.Duration
	// odd counts answers to n2's user after the kill that were neither
	// 503 nor, before it, 200: a 404 or an empty listing would be a bug.
	odd int
}

// killRound SIGKILLs n2, times its leaving n1's registry and routing, and
// brings it back.
func (b *bench) killRound(ctx context.Context, hc *http.Client, n1, n2 *node, u placedUser, token string) (roundResult, error) {
	var r roundResult
	if code, err := call(ctx, hc, http.MethodGet, "http://"+n1.addrs["proxy"]+filePath, u.token, nil, nil); err != nil || code != http.StatusOK {
		return r, fmt.Errorf("n2's user before the kill: status %d, %v", code, err)
	}
	killed := time.Now()
	n2.ch.Kill()
	<-n2.ch.Done()
	deadline := killed.Add(b.cfg.ttl + 20*time.Second)
	for r.registry == 0 || r.routing == 0 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("n2 still in n1's registry (%t) or routing (%t) %s after the kill", r.registry == 0, r.routing == 0, time.Since(killed).Round(time.Millisecond))
		}
		if r.registry == 0 {
			if all, err := listAll(ctx, hc, n1, token); err == nil && !listsNode(all, "n2") {
				r.registry = time.Since(killed)
			}
		}
		if r.routing == 0 {
			var e apiError
			code, err := call(ctx, hc, http.MethodGet, "http://"+n1.addrs["proxy"]+filePath, u.token, nil, &e)
			switch {
			case err != nil:
			case code == http.StatusServiceUnavailable && e.Error.Reason == "placement.instance_down":
				r.routing = time.Since(killed)
			case code != http.StatusServiceUnavailable:
				r.odd++
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}

	restarted := time.Now()
	if err := b.start(ctx, n2, "storage", "nats"); err != nil {
		return r, err
	}
	if err := waitFor(ctx, "n2's storage running in n1's list", 60*time.Second, func() bool {
		all, err := listAll(ctx, hc, n1, token)
		return err == nil && stateOn(all, "n2", "storage") == "running"
	}); err != nil {
		return r, err
	}
	if err := waitFor(ctx, "n2's user served through n1", 30*time.Second, func() bool {
		code, err := call(ctx, hc, http.MethodGet, "http://"+n1.addrs["proxy"]+filePath, u.token, nil, nil)
		return err == nil && code == http.StatusOK
	}); err != nil {
		return r, err
	}
	r.back = time.Since(restarted)
	// Let the nats cluster settle (n2's server catching up on the streams)
	// before the next kill, so every round starts from the same state.
	select {
	case <-time.After(b.cfg.ttl):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	return r, nil
}

// userOnN2 creates users through n1's proxy, each with one upload, until
// one is placed on n2 (its file answers on n2's storage directly).
func (b *bench) userOnN2(ctx context.Context, hc *http.Client, n1, n2 *node) (placedUser, error) {
	proxy := "http://" + n1.addrs["proxy"]
	var admin string
	if err := waitFor(ctx, "admin login through n1", 30*time.Second, func() bool {
		admin, _ = login(ctx, hc, proxy, "admin", adminPassword)
		return admin != ""
	}); err != nil {
		return placedUser{}, err
	}
	for i := range 20 {
		name := fmt.Sprintf("user%d", i)
		password := name + "-Pass-1"
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, name, password)
		if code, err := call(ctx, hc, http.MethodPost, proxy+"/api/v1/users", admin, []byte(body), nil); err != nil || code != http.StatusCreated {
			return placedUser{}, fmt.Errorf("create %s: status %d, %v", name, code, err)
		}
		tok, err := login(ctx, hc, proxy, name, password)
		if err != nil {
			return placedUser{}, err
		}
		// The first upload may meet a cluster still electing the
		// placement bucket's leader: 503 until it has one.
		if err := waitFor(ctx, "upload by "+name, 30*time.Second, func() bool {
			code, err := call(ctx, hc, http.MethodPut, proxy+filePath, tok, []byte("file of "+name), nil)
			return err == nil && (code == http.StatusCreated || code == http.StatusOK)
		}); err != nil {
			return placedUser{}, err
		}
		code, err := call(ctx, hc, http.MethodGet, "http://"+n2.addrs["storage"]+filePath, tok, nil, nil)
		if err == nil && code == http.StatusOK {
			return placedUser{name: name, token: tok}, nil
		}
	}
	return placedUser{}, fmt.Errorf("20 users and none placed on n2")
}

func login(ctx context.Context, hc *http.Client, proxy, user, password string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	code, err := call(ctx, hc, http.MethodPost, proxy+"/api/v1/tokens", "", []byte(body), &out)
	if err != nil || code != http.StatusOK || out.Token == "" {
		return "", fmt.Errorf("log in %s: status %d, %v", user, code, err)
	}
	return out.Token, nil
}
