package nats

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// How often the server pings its clients and routes, and how many pings
// may go unanswered.
const (
	serverPingInterval = 2 * time.Second
	serverMaxPingsOut  = 3
)

// serverNamePattern is what a server or cluster name may hold: it appears
// in NATS subjects and in the JetStream meta group.
var serverNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// serverOptions checks every setting and turns them into nats-server
// options. It opens nothing: the refusals it makes (a listener off
// loopback without credentials, routes without a route listener) come
// before any listener of the process is open.
func (c *Config) serverOptions(env service.Env) (*natsserver.Options, error) {
	var errs []error
	host, port, err := splitAddr(c.base.HTTPAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("nats client address (OCIS_NATS_ADDR): %w", err))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("nats client credentials: set both OCIS_NATS_USER and OCIS_NATS_PASSWORD, or neither"))
	}
	if err == nil && !isLoopback(host) && c.User == "" {
		errs = append(errs, fmt.Errorf("nats client listener %s is not a loopback address and has no credentials: set OCIS_NATS_USER and OCIS_NATS_PASSWORD (ocis init writes them) or listen on 127.0.0.1", c.base.HTTPAddr))
	}
	if !serverNamePattern.MatchString(c.ClusterName) {
		errs = append(errs, fmt.Errorf("nats cluster name %q: want letters, digits, _ and - (OCIS_NATS_CLUSTER_NAME)", c.ClusterName))
	}
	name := c.ServerName
	if name == "" {
		name = env.Node
	}
	if !serverNamePattern.MatchString(name) {
		errs = append(errs, fmt.Errorf("nats server name %q: want letters, digits, _ and - (OCIS_NATS_SERVER_NAME, default the node name)", name))
	}
	if env.Shared == nil && c.base.DataDir == "" {
		errs = append(errs, errors.New("nats data dir: no --data-dir and no base data path"))
	}

	opts := &natsserver.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		Username:   c.User,
		Password:   c.Password,
		JetStream:  true,
		// The runtime owns the signals; nats-server must never handle
		// them, let alone exit the process.
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		// A client or route that hangs (a SIGSTOPped node, a cut
		// network) is dropped after 6 to 8 s instead of nats-server's
		// 4 minutes: its subscriptions go with it, so a command relayed
		// to a hung node's runtime answers "no responders" at once.
		PingInterval: serverPingInterval,
		MaxPingsOut:  serverMaxPingsOut,
	}
	if env.Shared != nil || c.base.DataDir != "" {
		opts.StoreDir = c.base.DataPath(env.Shared, Name)
	}
	if env.Shared != nil {
		opts.Debug = env.Shared.LogLevel == "debug"
	}
	errs = append(errs, c.clusterOptions(opts))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return opts, nil
}

// clusterOptions adds the route listener and the routes to opts.
func (c *Config) clusterOptions(opts *natsserver.Options) error {
	var errs []error
	if (c.ClusterUser == "") != (c.ClusterPassword == "") {
		errs = append(errs, errors.New("nats route credentials: set both OCIS_NATS_CLUSTER_USER and OCIS_NATS_CLUSTER_PASSWORD, or neither"))
	}
	if c.ClusterAddr == "" {
		if len(c.Routes) > 0 {
			errs = append(errs, errors.New("nats routes (OCIS_NATS_ROUTES) need a route listener: set OCIS_NATS_CLUSTER_ADDR"))
		}
		return errors.Join(errs...)
	}
	host, port, err := splitAddr(c.ClusterAddr)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("nats cluster address (OCIS_NATS_CLUSTER_ADDR): %w", err))...)
	}
	if len(c.Routes) == 0 {
		// JetStream refuses to cluster without routes configured at start.
		errs = append(errs, errors.New("nats route listener (OCIS_NATS_CLUSTER_ADDR) needs routes (OCIS_NATS_ROUTES): list every server's route address, this server's own included"))
	}
	if !isLoopback(host) && c.ClusterUser == "" {
		errs = append(errs, fmt.Errorf("nats route listener %s is not a loopback address and has no credentials: set OCIS_NATS_CLUSTER_USER and OCIS_NATS_CLUSTER_PASSWORD (ocis init writes them) or listen on 127.0.0.1", c.ClusterAddr))
	}
	opts.Cluster = natsserver.ClusterOpts{
		Name:     c.ClusterName,
		Host:     host,
		Port:     port,
		Username: c.ClusterUser,
		Password: c.ClusterPassword,
	}
	for _, r := range c.Routes {
		u, err := routeURL(r, c.ClusterUser, c.ClusterPassword)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opts.Routes = append(opts.Routes, u)
	}
	return errors.Join(errs...)
}

// routeURL parses one route, nats-route://host:port or host:port, and
// gives it the route credentials unless it carries its own.
func routeURL(s, user, password string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "nats-route://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("nats route %q: %w", s, err)
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, fmt.Errorf("nats route %q: want nats-route://host:port", s)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("nats route %q: want nats-route://host:port", s)
	}
	if u.User == nil && user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u, nil
}

// splitAddr splits host:port for nats-server, whose port 0 means its
// default (4222): port 0 here means any free port, as everywhere in ocis.
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	return host, port, nil
}

// isLoopback reports whether host can only be reached from this machine.
// An empty host or a wildcard means every interface, and a name other than
// localhost may resolve anywhere: neither counts.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
