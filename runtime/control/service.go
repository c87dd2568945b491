// Package control is the runtime's control API, laid out like every service
// of the family: the business interface and its implementation over a
// supervisor here, endpoints.go, transport_http.go and client.go beside it.
// The CLI's list, kill, run and restart are thin clients of it. Across
// nodes, each runtime also serves its commands over NATS
// (transport_nats.go) and relays an operator's command to the node it
// names (client_nats.go).
package control

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// Service is what operators can ask of the runtime. The supervisor
// implements it in the runtime's process; Client implements it across HTTP.
type Service interface {
	// List returns this node's services, another node's (Node), or every
	// node's (All).
	List(ctx context.Context, req ListRequest) ([]supervisor.Status, error)
	// Nodes returns every node the registry knows, this one included.
	Nodes(ctx context.Context, _ endpoint.Empty) ([]registry.Node, error)
	Kill(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
	Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
	Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
}

// ListRequest says whose services to list: this node's (the zero value),
// one other node's (Node), or every node's (All).
type ListRequest struct {
	All  bool   `json:"-"`
	Node string `json:"-"`
}

// ServiceRequest names the service a command is for, and the node it runs
// on: empty for this node.
type ServiceRequest struct {
	Node string `json:"-"`
	Name string `json:"-"`
}

// Command verbs, as they appear in routes and NATS subjects.
const (
	VerbList    = "list"
	VerbKill    = "kill"
	VerbRun     = "run"
	VerbRestart = "restart"
)

// Peers are the other nodes of the system, as the runtime reaches them:
// their records from the registry, and their runtimes over NATS. A node on
// its own has none (nil).
type Peers interface {
	// Nodes lists every node of the registry, this one with its current
	// record.
	Nodes() []registry.Node
	// List asks node's runtime for its services.
	List(ctx context.Context, node string) ([]supervisor.Status, error)
	// Command asks node's runtime to kill, run or restart service name.
	Command(ctx context.Context, node, verb, name string) (supervisor.Status, error)
	// Lag fills in the Lag of the statuses of services that consume
	// events, as NATS says, leaving it absent where NATS does not answer
	// in time: a list never waits long for it.
	Lag(ctx context.Context, statuses []supervisor.Status)
}

// New returns the control API over sup, reaching the other nodes through
// peers (nil on a node on its own).
func New(sup *supervisor.Supervisor, node string, peers Peers) Service {
	return service{sup: sup, node: node, peers: peers}
}

// service adapts a Supervisor to Service.
type service struct {
	sup   *supervisor.Supervisor
	node  string
	peers Peers
}

var _ Service = service{}

func (s service) List(ctx context.Context, req ListRequest) ([]supervisor.Status, error) {
	var out []supervisor.Status
	switch {
	case req.All:
		out = s.listAll()
	case s.remote(req.Node):
		if s.peers == nil {
			return nil, s.alone(req.Node)
		}
		// That node's runtime fills in its own lag.
		return s.peers.List(ctx, req.Node)
	default:
		out = s.sup.Statuses()
	}
	// A node on its own reaches no NATS, so no consumer either.
	if s.peers != nil {
		s.peers.Lag(ctx, out)
	}
	return out, nil
}

// listAll is every node's services as the registry holds them, this
// node's from the supervisor itself: the registry answers at once for a
// node that hangs, where asking each runtime would wait for it.
func (s service) listAll() []supervisor.Status {
	out := s.sup.Statuses()
	if s.peers == nil {
		return out
	}
	for _, n := range s.peers.Nodes() {
		if n.Node == s.node {
			continue
		}
		for _, svc := range n.Services {
			out = append(out, supervisor.Status{
				Name: svc.Name, State: supervisor.State(svc.State), Node: n.Node, Addr: svc.Addr,
				Restarts: svc.Restarts, Since: svc.Since, LastError: svc.LastError,
			})
		}
	}
	// This node first, as `ocis list` shows it; the others by name.
	slices.SortStableFunc(out, func(a, b supervisor.Status) int {
		switch {
		case a.Node == b.Node:
			return 0
		case a.Node == s.node:
			return -1
		case b.Node == s.node:
			return 1
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out
}

func (s service) Nodes(context.Context, endpoint.Empty) ([]registry.Node, error) {
	if s.peers == nil {
		return []registry.Node{}, nil
	}
	return s.peers.Nodes(), nil
}

func (s service) Kill(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	if s.remote(req.Node) {
		return s.relay(ctx, req, VerbKill)
	}
	return s.sup.Kill(ctx, req.Name)
}

func (s service) Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	if s.remote(req.Node) {
		return s.relay(ctx, req, VerbRun)
	}
	return s.sup.Start(ctx, req.Name)
}

func (s service) Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	if s.remote(req.Node) {
		return s.relay(ctx, req, VerbRestart)
	}
	return s.sup.Restart(ctx, req.Name)
}

func (s service) remote(node string) bool { return node != "" && node != s.node }

func (s service) relay(ctx context.Context, req ServiceRequest, verb string) (supervisor.Status, error) {
	if s.peers == nil {
		return supervisor.Status{}, s.alone(req.Node)
	}
	return s.peers.Command(ctx, req.Node, verb, req.Name)
}

// alone is the answer about another node on a node that reaches none.
func (s service) alone(node string) error {
	return fmt.Errorf("%w: node %s is not reachable: node %s is not connected to other nodes (run the nats service here or set OCIS_NATS_URL)",
		apierr.ErrUnavailable, node, s.node)
}
