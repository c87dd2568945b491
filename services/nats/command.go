// Package nats is the embedded NATS server with JetStream: the registry's
// backend and the event bus of a family spread over several machines. It
// has no HTTP API; its primary address is the NATS client port.
package nats

import (
	"errors"
	"flag"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Name is the service's name in the catalogue, on the CLI and in env vars.
const Name = "nats"

// DefaultClusterName is the cluster name when none is configured; every
// server of one cluster must use the same.
const DefaultClusterName = "ocis"

// Descriptor describes the nats service to the runtime.
func Descriptor() service.Descriptor {
	d := service.Descriptor{
		Name:      Name,
		Summary:   "embedded NATS server with JetStream: registry and event bus",
		HTTPAddr:  "127.0.0.1:9233",
		DebugAddr: "127.0.0.1:9234",
	}
	d.NewConfig = func() service.Config {
		c := &Config{base: service.NewBase(d, true), ClusterName: DefaultClusterName}
		// The primary address is the NATS client port, not an HTTP API:
		// --addr, OCIS_NATS_ADDR.
		c.base.SetAddrFlag("addr", "address of the NATS client listener")
		return c
	}
	return d
}

// Config holds the nats service's settings.
type Config struct {
	base service.Base
	// User and Password are what clients must present; required when the
	// client listener is not on a loopback address.
	User     string
	Password string
	// ClusterAddr is the route listener; empty runs a single server.
	ClusterAddr string
	// Routes are the other servers' route listeners
	// (nats-route://host:port); credentials are added from
	// ClusterUser/ClusterPassword when a route has none.
	Routes []string
	// ClusterName must be the same on every server of the cluster.
	ClusterName string
	// ClusterUser and ClusterPassword are what routes present to each
	// other: separate from the client credentials so a client can never
	// pose as a server. Required when ClusterAddr is not loopback.
	ClusterUser     string
	ClusterPassword string
	// ServerName names this server in the cluster; empty means the node
	// name, which is unique among the nodes.
	ServerName string
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
	fs.StringVar(&c.User, "user", c.User, "user name NATS clients must present (written by ocis init; required off loopback)")
	fs.StringVar(&c.Password, "password", c.Password, "password NATS clients must present (written by ocis init)")
	fs.StringVar(&c.ClusterAddr, "cluster-addr", c.ClusterAddr, "address of the route listener that clusters this server with others (empty: a single server)")
	config.ListVar(fs, &c.Routes, "routes", "route listeners of the other servers (comma list of nats-route://host:port)")
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "name of the cluster, the same on every server")
	fs.StringVar(&c.ClusterUser, "cluster-user", c.ClusterUser, "user name routes present to each other (written by ocis init; required off loopback)")
	fs.StringVar(&c.ClusterPassword, "cluster-password", c.ClusterPassword, "password routes present to each other (written by ocis init)")
	fs.StringVar(&c.ServerName, "server-name", c.ServerName, "name of this server in the cluster (default: the node name)")
}

// Validate checks every setting without opening anything: ocis server
// calls it before any listener of the process opens, so that a refused
// setting (a listener off loopback without credentials) ends the command
// with exit 1 instead of crash-looping the service.
func (c *Config) Validate(env service.Env) error {
	_, err := c.serverOptions(env)
	return errors.Join(c.base.Validate(), err)
}

// Build implements service.Config. It validates every setting and builds
// the server's options without opening anything, so a bad setting is
// reported before any listener of the process opens.
func (c *Config) Build(env service.Env) (service.Runner, error) {
	opts, err := c.serverOptions(env)
	if err != nil {
		return nil, err
	}
	return &server{cfg: *c, env: env, opts: opts}, nil
}
