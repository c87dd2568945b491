package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/ocis-runtime/ocis/services"
)

// updateScreenshotsEnv names the variable that makes the browser test
// write its screenshots into docs/, instead of only into the test's temp
// dir: OCIS_UPDATE_SCREENSHOTS=1 go test ./cmd/ocis -run TestDashboardBrowser.
const updateScreenshotsEnv = "OCIS_UPDATE_SCREENSHOTS"

// startDashboard starts ocis server and returns its environment and the
// control address.
func startDashboard(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.vars["OCIS_LOG_LEVEL"] = "info"
	e.start("server")
	addr := e.vars["OCIS_RUNTIME_ADDR"]
	waitHTTP(t, "http://"+addr+"/readyz", http.StatusOK)
	return e, addr
}

// loginURL runs `ocis dashboard` and returns the URL it printed.
func loginURL(t *testing.T, e *env) string {
	t.Helper()
	code, stdout, stderr := e.run("dashboard")
	if code != 0 {
		t.Fatalf("ocis dashboard: exit %d\n%s", code, stderr)
	}
	u := strings.TrimSpace(stdout)
	if !strings.HasPrefix(u, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/ui/login?code=") {
		t.Fatalf("ocis dashboard printed %q, want a login URL", u)
	}
	return u
}

// serviceState is the state `ocis list --json` gives service name.
func serviceState(t *testing.T, e *env, name string) string {
	t.Helper()
	code, stdout, stderr := e.run("list", "--json")
	if code != 0 {
		t.Fatalf("ocis list --json: exit %d\n%s", code, stderr)
	}
	var list []struct{ Name, State string }
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("ocis list --json: %v\n%s", err, stdout)
	}
	for _, s := range list {
		if s.Name == name {
			return s.State
		}
	}
	t.Fatalf("ocis list --json has no %s:\n%s", name, stdout)
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestDashboardRefusals: without a session every page is 401; a POST
// with a session but another Origin, none, or a wrong CSRF token is 403;
// a login code works once. None of them changes anything.
func TestDashboardRefusals(t *testing.T) {
	e, addr := startDashboard(t)
	base := "http://" + addr
	kill := base + "/ui/nodes/test/services/storage"

	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	status := func(c *http.Client, method, u, origin, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// A browser with a session, for the POSTs that must fail on Origin
	// or token alone.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 10 * time.Second, Jar: jar, CheckRedirect: plain.CheckRedirect}
	login := loginURL(t, e)
	if got := status(browser, http.MethodGet, login, "", ""); got != http.StatusOK {
		t.Fatalf("login: %d, want 200", got)
	}
	if got := status(browser, http.MethodGet, login, "", ""); got != http.StatusUnauthorized {
		t.Errorf("login with a used code: %d, want 401", got)
	}
	resp, err := browser.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /ui/ with a session: %d, csrf token found: %v", resp.StatusCode, m != nil)
	}
	csrf := string(m[1])
	form := "verb=kill&csrf=" + url.QueryEscape(csrf)

	for _, tc := range []struct {
		name           string
		client         *http.Client
		method, u      string
		origin, body   string
		want           int
		wantSetsCookie bool
	}{
		{name: "page without a session", client: plain, method: http.MethodGet, u: base + "/ui/", want: http.StatusUnauthorized},
		{name: "events without a session", client: plain, method: http.MethodGet, u: base + "/ui/events", want: http.StatusUnauthorized},
		{name: "logs without a session", client: plain, method: http.MethodGet, u: base + "/ui/logs/test/storage", want: http.StatusUnauthorized},
		{name: "kill without a session", client: plain, method: http.MethodPost, u: kill, origin: base, body: form, want: http.StatusUnauthorized},
		{name: "kill from another origin", client: browser, method: http.MethodPost, u: kill, origin: "http://evil.example", body: form, want: http.StatusForbidden},
		{name: "kill without an origin", client: browser, method: http.MethodPost, u: kill, body: form, want: http.StatusForbidden},
		{name: "kill with a wrong csrf token", client: browser, method: http.MethodPost, u: kill, origin: base, body: "verb=kill&csrf=wrong", want: http.StatusForbidden},
		{name: "kill without a csrf token", client: browser, method: http.MethodPost, u: kill, origin: base, body: "verb=kill", want: http.StatusForbidden},
		{name: "login without a code", client: plain, method: http.MethodGet, u: base + "/ui/login", want: http.StatusUnauthorized},
		{name: "login code route without the runtime token", client: plain, method: http.MethodPost, u: base + "/api/v1/dashboard/logins", want: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(tc.client, tc.method, tc.u, tc.origin, tc.body); got != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.u, got, tc.want)
			}
		})
	}
	if got := serviceState(t, e, "storage"); got != "running" {
		t.Fatalf("storage is %s after refused kills, want running", got)
	}
	// The same session, Origin and token do kill it: the refusals above
	// were about what they lacked.
	if got := status(browser, http.MethodPost, kill, base, form); got != http.StatusSeeOther {
		t.Fatalf("kill with session, origin and token: %d, want 303", got)
	}
	if got := serviceState(t, e, "storage"); got != "stopped" {
		t.Fatalf("storage is %s after the kill, want stopped", got)
	}
}

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium; .ci/run installs it): the dashboard's browser test does not run")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// a tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Screenshots show the page, not the scroll bar beside it.
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser; it must not run under a
	// timeout, which would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// cellState is the state the page shows for service on node test.
func cellState(t *testing.T, ctx context.Context, service string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.getElementById("cell--test--%s") || {dataset: {}}).dataset.state || ""`, service))
}

// waitCell waits until the page shows service in state want, and returns
// how long that took.
func waitCell(t *testing.T, ctx context.Context, service, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := cellState(t, ctx, service)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("the page shows %s %q after %s, want %q", service, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDashboardBrowser logs in with the URL `ocis dashboard` prints, sees
// every service running, kills storage with its button and sees it
// stopped within 2 s (as `ocis list` says), runs it again and sees it
// running; the page is pushed each change, never reloaded.
func TestDashboardBrowser(t *testing.T) {
	ctx := newBrowser(t)
	e, _ := startDashboard(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(loginURL(t, e))); err != nil {
		t.Fatal(err)
	}
	// The login page moves on to /ui/ by itself.
	waitFor(t, "the dashboard page", 10*time.Second, func() bool {
		return eval[string](t, ctx, `location.pathname`) == "/ui/" && eval[bool](t, ctx, `document.getElementById("grid") !== null`)
	})
	for _, name := range services.Catalogue().Names() {
		waitCell(t, ctx, name, "running", 10*time.Second)
	}
	waitFor(t, "the event stream", 5*time.Second, func() bool {
		return eval[string](t, ctx, `document.getElementById("live").dataset.state`) == "on"
	})

	// Some traffic through the proxy, so the rates and p99 have
	// something to show.
	proxy := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]
	stopLoad := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for {
			resp, err := http.Post(proxy+"/api/v1/tokens", "application/json",
				strings.NewReader(`{"username":"admin","password":"`+testAdminPassword+`"}`))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-stopLoad:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	screenshots(t, ctx)
	close(stopLoad)
	<-loaded

	// Kill storage with its button; the page is told, not reloaded.
	eval[bool](t, ctx, `window.notReloaded = true`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#kill--test--storage`))); err != nil {
		t.Fatal(err)
	}
	took := waitCell(t, ctx, "storage", "stopped", 2*time.Second)
	t.Logf("storage shown stopped %s after the click", took)
	if got := serviceState(t, e, "storage"); got != "stopped" {
		t.Fatalf("ocis list says storage is %s, the page says stopped", got)
	}
	for _, name := range []string{"proxy", "users", "activity", "nats"} {
		if got := cellState(t, ctx, name); got != "running" {
			t.Errorf("%s shows %q after killing storage, want running", name, got)
		}
	}

	// Run it again with its button.
	waitFor(t, "the run button enabled", 2*time.Second, func() bool {
		return eval[bool](t, ctx, `!document.getElementById("run--test--storage").disabled`)
	})
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#run--test--storage`))); err != nil {
		t.Fatal(err)
	}
	waitCell(t, ctx, "storage", "running", 10*time.Second)
	if got := serviceState(t, e, "storage"); got != "running" {
		t.Fatalf("ocis list says storage is %s, the page says running", got)
	}
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page was reloaded; updates should be pushed into it")
	}
	if msg := eval[string](t, ctx, `document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent`); msg != "" {
		t.Errorf("the page shows an error: %s", msg)
	}

	// The logs of storage open in a dialog on click.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#logs--test--storage`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the logs dialog", 5*time.Second, func() bool {
		return eval[bool](t, ctx, `document.getElementById("logs").open && document.querySelector("#logs pre.log").textContent.includes("service=storage")`)
	})
}

// screenshots saves the main page wide and narrow, light and dark: into
// the test's temp dir, and into docs/ when OCIS_UPDATE_SCREENSHOTS is set.
func screenshots(t *testing.T, ctx context.Context) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv(updateScreenshotsEnv) != "" {
		dir = filepath.Join("..", "..", "docs")
		// The rates need two readings a few seconds apart, the
		// second pushed to the page with the next traffic update.
		time.Sleep(11 * time.Second)
	}
	for _, shot := range []struct {
		name   string
		width  int64
		height int64
		scheme string
	}{
		{"dashboard-wide-light.png", 1400, 560, "light"},
		{"dashboard-wide-dark.png", 1400, 560, "dark"},
		{"dashboard-narrow-light.png", 390, 844, "light"},
		{"dashboard-narrow-dark.png", 390, 844, "dark"},
	} {
		media := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: shot.scheme}},
			})
			return err
		})
		if err := chromedp.Do(ctx, media, chromedp.EmulateViewport(shot.width, shot.height)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // a layout pass
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", shot.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, shot.name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900)); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
}
