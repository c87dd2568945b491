package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ocis-runtime/ocis/pkg/config"
)

// Defaults of Options.
const (
	// DefaultPingInterval is far below nats.go's two minutes, so that a
	// server that hangs (TCP still open) is noticed within a few seconds
	// and the connection moves to another server.
	DefaultPingInterval = 2 * time.Second
	// DefaultMaxPingsOut is how many pings may go unanswered before the
	// server is given up: with DefaultPingInterval, 4 to 6 seconds.
	DefaultMaxPingsOut = 2
	// DefaultReconnectWait is the pause before trying a server again.
	DefaultReconnectWait = 500 * time.Millisecond
)

// inProcessURL stands in the server pool for the embedded server, which
// has no address a dialer could use; the dialer recognises its host.
const inProcessURL = "nats://in-process.invalid:4222"

// Options say how to reach NATS.
type Options struct {
	// URLs are the servers to dial: "nats://host:port" or "host:port"
	// (OCIS_NATS_URL, a comma list). The client also learns the other
	// servers of a cluster from the one it reaches.
	URLs []string
	// User and Password are the client credentials every server of the
	// cluster accepts (OCIS_NATS_USER, OCIS_NATS_PASSWORD, the same ones
	// the nats service requires).
	User     string
	Password string
	// Name names the connection on the server and labels its metrics
	// (conn="<name>"), so a process may hold several connections.
	Name string
	// Embedded, when it has a server, is used instead of the network:
	// every (re)connection goes in-process while the server runs here.
	Embedded *Embedded
	// Hold, when set, keeps the connection from even trying until it is
	// closed: for a client whose first use of NATS waits for something
	// anyway (a service's work that begins once its family has started,
	// service.AfterStart), so that its handshake takes neither the
	// caller's time nor the server's while everything else starts.
	Hold <-chan struct{}
	// PingInterval, MaxPingsOut and ReconnectWait default to the
	// Default* constants when zero.
	PingInterval  time.Duration
	MaxPingsOut   int
	ReconnectWait time.Duration
	// Logger receives connect, disconnect and reconnect lines; nil logs
	// nothing.
	Logger log.Logger
	// Registerer, when set, gets the connection's metrics:
	// ocis_nats_connected, ocis_nats_disconnects_total and
	// ocis_nats_reconnects_total.
	Registerer prometheus.Registerer
}

// RegisterFlags defines the client-side flags: nats-url, nats-user and
// nats-password. Registered in the shared scope they read OCIS_NATS_URL,
// OCIS_NATS_USER and OCIS_NATS_PASSWORD; the latter two are also the env
// names of the nats service's own credentials, so one config file line
// sets both sides.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	config.ListVar(fs, &o.URLs, "nats-url", "NATS servers to connect to when this node runs no nats service (comma list of nats://host:port)")
	fs.StringVar(&o.User, "nats-user", o.User, "user name of NATS clients (written by ocis init)")
	fs.StringVar(&o.Password, "nats-password", o.Password, "password of NATS clients (written by ocis init)")
}

// Validate checks the options without connecting anywhere.
func (o *Options) Validate() error {
	if len(o.URLs) == 0 && o.Embedded == nil {
		return errors.New("no NATS server to connect to: run the nats service on this node or set OCIS_NATS_URL")
	}
	for _, u := range o.URLs {
		if _, err := parseURL(u); err != nil {
			return err
		}
	}
	if (o.User == "") != (o.Password == "") {
		return errors.New("NATS user and password must be given together (OCIS_NATS_USER, OCIS_NATS_PASSWORD)")
	}
	return nil
}

// parseURL accepts nats://host:port and host:port.
func parseURL(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "nats://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("NATS url %q: %w", s, err)
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return nil, fmt.Errorf("NATS url %q: want scheme nats:// or tls://", s)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("NATS url %q: want host:port", s)
	}
	return u, nil
}

// Connect returns a connection that never gives up: it returns at once,
// even when no server answers yet, and from then on connects and
// reconnects forever in the background, in-process whenever the embedded
// server runs and otherwise to any server of the pool. It never exits the
// process; losses and recoveries are logged and counted. The caller
// closes it. An error means only that the options are invalid.
func Connect(o Options) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.MaxPingsOut <= 0 {
		o.MaxPingsOut = DefaultMaxPingsOut
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	logger := o.Logger
	if logger == nil {
		logger = log.NewNopLogger()
	}
	logger = log.With(logger, "conn", o.Name)
	m := newMetrics(o.Registerer, o.Name)

	servers := make([]string, 0, len(o.URLs)+1)
	if o.Embedded != nil {
		servers = append(servers, inProcessURL)
	}
	for _, s := range o.URLs {
		u, _ := parseURL(s)
		u.User = nil // credentials come from Options, never from a URL that might be logged
		servers = append(servers, u.String())
	}
	d := &dialer{embedded: o.Embedded, hold: o.Hold, net: net.Dialer{Timeout: 2 * time.Second}, closed: make(chan struct{})}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// An auth error must not end the connection either: the servers
		// may be restarting with a new config file.
		nats.IgnoreAuthErrorAbort(),
		// Between rounds of attempts: ReconnectWait and up to a fifth
		// more, cut short when this process's own server comes up.
		nats.CustomReconnectDelay(func(int) time.Duration {
			return d.pause(o.ReconnectWait + rand.N(o.ReconnectWait/5+1))
		}),
		nats.PingInterval(o.PingInterval),
		nats.MaxPingsOutstanding(o.MaxPingsOut),
		nats.SetCustomDialer(d),
		// The placeholder host of the embedded server must not be looked
		// up; the dialer resolves real names itself.
		nats.SkipHostLookup(),
		nats.ConnectHandler(func(nc *nats.Conn) {
			m.connected.Set(1)
			level.Info(logger).Log("msg", "nats connected", "server", serverName(nc))
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			m.connected.Set(0)
			if err == nil {
				// Our own Close: nats.go reports it as a disconnection
				// without an error, then calls ClosedHandler, which says
				// so. Nothing will reconnect.
				return
			}
			m.disconnects.Inc()
			if o.Embedded != nil && !o.Embedded.Running() {
				// This process's own server was withdrawn: the nats
				// service stopped (last, at a clean stop) or crashed, which
				// the supervisor reports itself. Nothing was lost here.
				level.Info(logger).Log("msg", "nats server of this process stopped, reconnecting when one runs", "err", err)
				return
			}
			level.Warn(logger).Log("msg", "nats disconnected, reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.connected.Set(1)
			m.reconnects.Inc()
			level.Info(logger).Log("msg", "nats reconnected", "server", serverName(nc))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			level.Debug(logger).Log("msg", "nats reconnect attempt failed", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			m.connected.Set(0)
			d.close()
			level.Info(logger).Log("msg", "nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, io.ErrClosedPipe) && o.Embedded != nil && !o.Embedded.Running() {
				// The in-process pipe to this process's own server, which
				// the nats service withdrew: the disconnection is said.
				level.Debug(logger).Log("msg", "nats asynchronous error", "subject", subject, "err", err)
				return
			}
			level.Warn(logger).Log("msg", "nats asynchronous error", "subject", subject, "err", err)
		}),
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	nc, err := nats.Connect(strings.Join(servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	return nc, nil
}

// serverName says which server a connection reached, without credentials.
func serverName(nc *nats.Conn) string {
	if name := nc.ConnectedServerName(); name != "" {
		return name + " " + nc.ConnectedUrlRedacted()
	}
	return nc.ConnectedUrlRedacted()
}

// dialer goes in-process while the embedded server runs, whatever server
// of the pool nats.go picked, and over the network otherwise.
type dialer struct {
	embedded *Embedded
	// hold, until closed, fails every attempt at once (Options.Hold).
	hold <-chan struct{}
	net  net.Dialer
	// tried is how many embedded servers had been set at the last
	// attempt: pause waits no longer once another one has been.
	tried atomic.Uint64
	// closed is closed with the connection, ending a pause at once.
	closed    chan struct{}
	closeOnce sync.Once
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	if d.held() {
		return nil, errHeld
	}
	conn, gen, err := d.embedded.inProcessConn()
	d.tried.Store(gen)
	if err == nil {
		return conn, nil
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, fmt.Errorf("in-process connection: %w", err)
	}
	if address == strings.TrimPrefix(inProcessURL, "nats://") {
		return nil, err
	}
	return d.net.Dial(network, address)
}

// pause is the wait between two rounds of connection attempts: wait, or
// less when this process's embedded server is set meanwhile. The nats
// service starts alongside the services that connect to it, so their
// first attempt usually finds no server; without this, each of them would
// sit out a whole ReconnectWait (half a second) after the server came up,
// with its events unsent and the node unannounced. It returns zero, the
// wait being over, for nats.go to try at once.
func (d *dialer) pause(wait time.Duration) time.Duration {
	if d.held() {
		select {
		case <-d.hold:
		case <-d.closed:
		}
		return 0
	}
	gen, next := d.embedded.watch()
	if gen != d.tried.Load() {
		// A server was set after the last attempt: it has not been tried.
		return 0
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-next:
	case <-t.C:
	case <-d.closed:
	}
	return 0
}

func (d *dialer) close() { d.closeOnce.Do(func() { close(d.closed) }) }

// errHeld is an attempt made while the connection is held (Options.Hold).
var errHeld = errors.New("connection held until its first use")

// held reports whether the connection is still held (Options.Hold).
func (d *dialer) held() bool {
	if d.hold == nil {
		return false
	}
	select {
	case <-d.hold:
		return false
	default:
		return true
	}
}

type metrics struct {
	connected   prometheus.Gauge
	disconnects prometheus.Counter
	reconnects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name string) metrics {
	f := promauto.With(reg)
	labels := prometheus.Labels{"conn": name}
	return metrics{
		connected: f.NewGauge(prometheus.GaugeOpts{
			Name: "ocis_nats_connected", Help: "Whether the NATS connection is up (1) or reconnecting (0).", ConstLabels: labels,
		}),
		disconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "ocis_nats_disconnects_total", Help: "Times the NATS connection was lost.", ConstLabels: labels,
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "ocis_nats_reconnects_total", Help: "Times the NATS connection was re-established after a loss.", ConstLabels: labels,
		}),
	}
}
