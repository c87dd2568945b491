// Package dashboard is the runtime's web dashboard, served at /ui/ on the
// control API's listener: one row per node, one cell per service, with
// kill, run and restart on each, pushed live with Server-Sent Events.
// Pages are html/template, rendered on the server; the few lines of
// script (assets/app.js) only follow the event stream and send the
// buttons' forms without leaving the page, and every page works without
// them. Everything is embedded in the binary.
//
// A browser gets in with a one-time code that the runtime hands out
// through the control API, behind the runtime token (`ocis dashboard`
// prints it as a link); the code opens a session held in an HttpOnly,
// SameSite=Strict cookie. Every POST must also come from the dashboard's
// own origin and carry the session's CSRF token. The dashboard acts only
// through the control API's endpoints, so a click does exactly what
// `ocis kill --node N <service>` does, logged and counted the same way.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options are what the dashboard reads and acts through.
type Options struct {
	// Node is this node's name.
	Node string
	// Endpoints are the control API's endpoints, wrapped in its chain:
	// List, Nodes, Kill, Run and Restart are used.
	Endpoints control.Endpoints
	// Logs are this node's services' recent lines; nil shows the last
	// error only.
	Logs control.Logs
	// Gatherer returns the metrics registry of a service running on this
	// node (supervisor.Gatherer); nil shows no request rates.
	Gatherer func(service string) prometheus.Gatherer
	// Changed returns a channel closed at the next state change of this
	// node's services (supervisor.Changed).
	Changed func() <-chan struct{}
	// Subscribe notifies of changes of the other nodes' records
	// (registry.Watcher.Subscribe); nil on a node on its own.
	Subscribe func() (<-chan struct{}, func())
	// Stop ends every event stream: the listener is shutting down.
	Stop <-chan struct{}
	// Version is shown in the page's header.
	Version string
	Logger  log.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Dashboard serves the pages under /ui/ and the route that hands out
// login codes.
type Dashboard struct {
	opts     Options
	sessions *sessions
	rates    *rates
	// pages parses the templates at the first page served, not in New:
	// New runs during every start of ocis server, where parsing them cost
	// about 0.3 ms of CPU for pages most starts never serve. The
	// templates are embedded and parsed all at once, so a test that
	// renders any page finds a broken one.
	pages func() *template.Template
}

// New returns the dashboard over opts.
func New(opts Options) *Dashboard {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Changed == nil {
		never := make(chan struct{})
		opts.Changed = func() <-chan struct{} { return never }
	}
	d := &Dashboard{opts: opts, sessions: newSessions(opts.Now), rates: newRates()}
	d.pages = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("").Funcs(template.FuncMap{
			"uptime": func(c cell) string { return c.Uptime(d.opts.Now()) },
			"rfc3339": func(t time.Time) string {
				if t.IsZero() {
					return ""
				}
				return t.UTC().Format(time.RFC3339)
			},
		}).ParseFS(templateFS, "templates/*.html"))
	})
	return d
}

// LoginPath is where a login code is redeemed: `ocis dashboard` prints
// http://<control address>LoginPath?code=<code>.
const LoginPath = "/ui/login"

// Login is a one-time login code, as the control API hands it out.
type Login struct {
	Code      string    `json:"code"`
	Path      string    `json:"path"` // LoginPath?code=…, to append to the runtime's address
	ExpiresAt time.Time `json:"expires_at"`
}

// loginRoute is POST /api/v1/dashboard/logins, behind the runtime token
// like every route of the control API.
var loginRoute = transport.Post[endpoint.Empty, Login]("/api/v1/dashboard/logins").Status(http.StatusCreated)

func (d *Dashboard) newLogin(context.Context, endpoint.Empty) (Login, error) {
	code, expires, err := d.sessions.newCode()
	if err != nil {
		return Login{}, err
	}
	level.Info(d.opts.Logger).Log("msg", "dashboard login code handed out", "expires_at", expires.UTC().Format(time.RFC3339))
	return Login{Code: code, Path: LoginPath + "?code=" + code, ExpiresAt: expires}, nil
}

// Routes mounts the dashboard on the control API's router: the login
// code route behind the runtime token, and the pages, which check the
// session cookie themselves (the browser has no runtime token).
func (d *Dashboard) Routes() control.HandlerOption {
	return func(r *transport.Router, _ log.Logger) {
		loginRoute.Serve(r, endpoint.Typed(d.newLogin))
		pub := transport.Public()
		r.HandleHTTP("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently), pub)
		r.HandleHTTP("GET /ui/assets/", d.assets(), pub)
		r.HandleHTTP("GET "+LoginPath, secure(http.HandlerFunc(d.login)), pub)
		r.HandleHTTP("GET /ui/{$}", d.page(d.index), pub)
		r.HandleHTTP("GET /ui/events", d.page(d.events), pub)
		r.HandleHTTP("GET /ui/logs/{node}/{service}", d.page(d.logs), pub)
		r.HandleHTTP("POST /ui/nodes/{node}/services/{service}", d.post(d.command), pub)
		r.HandleHTTP("POST /ui/logout", d.post(d.logout), pub)
	}
}

// handler is a page's handler, given the session it runs in.
type handler func(w http.ResponseWriter, r *http.Request, sess session)

// page lets a request with a session through, and answers 401 to one
// without.
func (d *Dashboard) page(h handler) http.Handler {
	return secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := d.sessions.lookup(r)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		h(w, r, sess)
	}))
}

// post is page for changes: the session first (401), then the Origin
// and the CSRF token (403), before anything is read or done.
func (d *Dashboard) post(h handler) http.Handler {
	return d.page(func(w http.ResponseWriter, r *http.Request, sess session) {
		if err := checkPost(r, sess); err != nil {
			transport.SkipBody(w, r)
			d.fail(w, r, err)
			return
		}
		h(w, r, sess)
	})
}

// secure sets the headers every answer of the dashboard carries: no
// script, style, frame or form target from anywhere but here, no
// caching, and no Referer, so a login link never travels on.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// assets serves the embedded stylesheet and script.
func (d *Dashboard) assets() http.Handler {
	sub, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix("/ui/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// login redeems a code: it opens a session and sends the browser on to
// the dashboard. The answer is a page that moves on by itself rather
// than a redirect: a browser sends a SameSite=Strict cookie only on a
// navigation that starts on this site, and the link was clicked
// elsewhere (a terminal).
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	id, _, err := d.sessions.redeem(r.URL.Query().Get("code"))
	if err != nil {
		level.Warn(d.opts.Logger).Log("msg", "dashboard login refused", "client", r.RemoteAddr, "err", err)
		d.fail(w, r, err)
		return
	}
	level.Info(d.opts.Logger).Log("msg", "dashboard session opened", "client", r.RemoteAddr)
	d.sessions.setCookie(w, r, id)
	d.render(w, http.StatusOK, "login.html", nil)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, _ session) {
	d.sessions.end(r)
	d.sessions.clearCookie(w, r)
	d.render(w, http.StatusOK, "message.html", message{Title: "Logged out", Text: "Run `ocis dashboard` for a new login link."})
}

// view is what the main page and each event render.
type view struct {
	Grid    grid
	CSRF    string
	Version string
}

func (d *Dashboard) index(w http.ResponseWriter, r *http.Request, sess session) {
	v := view{Grid: d.build(r.Context()), CSRF: sess.csrf, Version: d.opts.Version}
	d.render(w, http.StatusOK, "index.html", v)
}

// command is a click on kill, run or restart: the control API's endpoint
// for it, on the node the cell is on. A script's call (Accept: JSON) gets
// the service's status or the API's error; a plain form post is sent
// back to the page.
func (d *Dashboard) command(w http.ResponseWriter, r *http.Request, _ session) {
	verb := r.PostFormValue("verb")
	e := map[string]kitendpoint.Endpoint{
		control.VerbKill: d.opts.Endpoints.Kill, control.VerbRun: d.opts.Endpoints.Run, control.VerbRestart: d.opts.Endpoints.Restart,
	}[verb]
	if e == nil {
		d.fail(w, r, fmt.Errorf("%w: verb must be kill, run or restart, got %q", apierr.ErrInvalidArgument, verb))
		return
	}
	req := control.ServiceRequest{Node: r.PathValue("node"), Name: r.PathValue("service")}
	level.Info(d.opts.Logger).Log("msg", "dashboard command", "verb", verb, "node", req.Node, "target", req.Name, "client", r.RemoteAddr)
	ctx, cancel := context.WithTimeout(r.Context(), control.RequestTimeout)
	defer cancel()
	st, err := endpoint.Call[control.ServiceRequest, supervisor.Status](ctx, e, req)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if wantsJSON(r) {
		transport.EncodeJSON(http.StatusOK)(ctx, w, st) //nolint:errcheck // the client went away
		return
	}
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logs shows a service's recent lines: this node's from the log ring,
// another node's last error (its lines stay on that node).
func (d *Dashboard) logs(w http.ResponseWriter, r *http.Request, _ session) {
	node, name := r.PathValue("node"), r.PathValue("service")
	v := logView{Node: node, Service: name, Fragment: r.URL.Query().Get("fragment") == "1"}
	if node == d.opts.Node && d.opts.Logs != nil {
		lines, _, ok := d.opts.Logs.Tail(name, logLines)
		if !ok {
			d.fail(w, r, supervisor.ErrUnknownService)
			return
		}
		v.Lines, v.Local = lines, true
	}
	g := d.build(r.Context())
	for _, row := range g.Rows {
		for _, c := range row.Cells {
			if c.Node == node && c.Service == name && c.Present {
				v.LastError, v.Known = c.LastError, true
			}
		}
	}
	if !v.Known && !v.Local {
		d.fail(w, r, supervisor.ErrUnknownService)
		return
	}
	d.render(w, http.StatusOK, "logs.html", v)
}

// logLines is how many recent lines a click shows.
const logLines = 50

type logView struct {
	Node, Service string
	Fragment      bool
	Local         bool
	Known         bool
	Lines         []string
	LastError     string
}

type message struct {
	Title, Text string
}

// fail answers err: as the API's JSON error to a script, as a small page
// to a browser.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if wantsJSON(r) || r.URL.Path == "/ui/events" {
		transport.WriteError(d.opts.Logger, w, err)
		return
	}
	code := apierr.CodeOf(err)
	d.render(w, transport.StatusOf(code), "message.html", message{Title: http.StatusText(transport.StatusOf(code)), Text: err.Error()})
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// render executes a template into a buffer first, so a failure is a 500
// rather than half a page.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := d.pages().ExecuteTemplate(&buf, name, data); err != nil {
		level.Error(d.opts.Logger).Log("msg", "render dashboard page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}
