package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// fakeRuntime is a control API over a map of states, with the
// supervisor's change channel.
type fakeRuntime struct {
	mu      sync.Mutex
	states  map[string]supervisor.State
	changed chan struct{}
	calls   []string
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{
		states:  map[string]supervisor.State{"storage": supervisor.StateRunning, "users": supervisor.StateRunning},
		changed: make(chan struct{}),
	}
}

func (f *fakeRuntime) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeRuntime) set(name string, st supervisor.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[name] = st
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeRuntime) endpoints() control.Endpoints {
	list := func(context.Context, control.ListRequest) ([]supervisor.Status, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []supervisor.Status
		for _, name := range []string{"users", "storage"} {
			out = append(out, supervisor.Status{Name: name, State: f.states[name], Node: "n1", Since: time.Now()})
		}
		out = append(out, supervisor.Status{Name: "storage", State: supervisor.StateRunning, Node: "n2", LastError: "disk full"})
		return out, nil
	}
	nodes := func(context.Context, endpoint.Empty) ([]registry.Node, error) { return nil, nil }
	kill := func(_ context.Context, req control.ServiceRequest) (supervisor.Status, error) {
		f.mu.Lock()
		f.calls = append(f.calls, "kill "+req.Node+"/"+req.Name)
		f.mu.Unlock()
		f.set(req.Name, supervisor.StateStopped)
		return supervisor.Status{Name: req.Name, Node: req.Node, State: supervisor.StateStopped}, nil
	}
	return control.Endpoints{
		List: endpoint.Typed(list), Nodes: endpoint.Typed(nodes),
		Kill: endpoint.Typed(kill), Run: endpoint.Typed(kill), Restart: endpoint.Typed(kill),
	}
}

// serve runs the dashboard on a control router with token "secret" and
// returns the server and a browser-like client logged in to it.
func serve(t *testing.T, f *fakeRuntime) (*httptest.Server, *http.Client) {
	t.Helper()
	d := New(Options{Node: "n1", Endpoints: f.endpoints(), Changed: f.Changed})
	r := transport.NewRouter(log.NewNopLogger(), transport.StaticToken("secret"))
	d.Routes()(r, log.NewNopLogger())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	login, u, err := NewLogin(context.Background(), strings.TrimPrefix(srv.URL, "http://"), "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	if login.Code == "" || !strings.HasSuffix(u, LoginPath+"?code="+login.Code) {
		t.Fatalf("login %+v, url %s", login, u)
	}
	if _, _, err := NewLogin(context.Background(), strings.TrimPrefix(srv.URL, "http://"), "wrong", nil); err == nil {
		t.Error("a login code with the wrong runtime token")
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return srv, c
}

// TestEventsPushAChangeAtOnce: the event stream sends the table when it
// opens and again as soon as the supervisor reports a change, with no
// polling in between.
func TestEventsPushAChangeAtOnce(t *testing.T) {
	f := newFakeRuntime()
	srv, c := serve(t, f)
	resp, err := c.Get(srv.URL + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if line == "" && ev.Len() > 0 {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(line + "\n")
		}
		close(events)
	}()
	next := func() string {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(time.Second):
			t.Fatal("no event within a second")
			return ""
		}
	}
	first := next()
	if !strings.HasPrefix(first, "event: grid\n") || !strings.Contains(first, `data-service="storage" data-state="running" id="cell--n1--storage"`) {
		t.Fatalf("first event:\n%s", first)
	}
	if !strings.Contains(first, "disk full") || !strings.Contains(first, `id="cell--n2--storage"`) {
		t.Errorf("the other node's cell or its last error is missing:\n%s", first)
	}
	f.set("storage", supervisor.StateStopped)
	if ev := next(); !strings.Contains(ev, `data-service="storage" data-state="stopped" id="cell--n1--storage"`) {
		t.Errorf("event after the change:\n%s", ev)
	}
}

// TestCommandGoesThroughTheEndpoint: a form post with session, Origin
// and token calls the control API's kill endpoint for that node.
func TestCommandGoesThroughTheEndpoint(t *testing.T) {
	f := newFakeRuntime()
	srv, c := serve(t, f)
	resp, err := c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page := new(strings.Builder)
	_, _ = bufio.NewReader(resp.Body).WriteTo(page)
	resp.Body.Close()
	m := strings.SplitN(page.String(), `name="csrf" value="`, 2)
	if len(m) != 2 {
		t.Fatalf("no csrf token in the page:\n%s", page)
	}
	csrf := m[1][:strings.Index(m[1], `"`)]
	form := url.Values{"verb": {"kill"}, "csrf": {csrf}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/nodes/n2/services/storage", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	req.Header.Set("Accept", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kill: %d", resp.StatusCode)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 || f.calls[0] != "kill n2/storage" {
		t.Errorf("calls %v, want [kill n2/storage]", f.calls)
	}
}
