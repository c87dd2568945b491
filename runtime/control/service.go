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
	// Restart stops a service and starts it again; on this node it is
	// built from the current config file (Config.Refresh).
	Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
	// Reload reads the config file again and restarts exactly the
	// services whose settings changed (reload.go).
	Reload(ctx context.Context, _ endpoint.Empty) (ReloadReport, error)
	// SetPassword sets an account's password through the users service
	// running on this node: the operator's way back in when the admin
	// password is lost (`ocis users reset-password`), authorised by the
	// runtime token.
	SetPassword(ctx context.Context, req PasswordRequest) (endpoint.Empty, error)
}

// PasswordRequest names an account and its new password.
type PasswordRequest struct {
	Name string `json:"-"`
	New  string `json:"new"`
}

// ErrUsersNotRunning answers SetPassword on a node where the users service
// does not run: the CLI then sets the password in the store itself.
var ErrUsersNotRunning = apierr.New(apierr.CodeUnavailable, "runtime.users_not_running", "the users service does not run on this node")

// StateExcluded is the state `ocis list` shows for a service of the
// catalogue that this node does not run (OCIS_RUN_SERVICES,
// OCIS_EXCLUDE_RUN_SERVICES). It is no state of the supervisor's: an
// excluded service is not supervised at all.
const StateExcluded supervisor.State = "excluded"

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
func New(sup *supervisor.Supervisor, node string, peers Peers, opts ...Option) Service {
	s := service{sup: sup, node: node, peers: peers, probe: newProbe()}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// Option adds to what the control API knows of this node.
type Option func(*service)

// WithVersion is the version of the binary this node's services run in.
func WithVersion(v string) Option { return func(s *service) { s.version = v } }

// WithExcluded names the services of the catalogue this node does not
// run: listed as excluded, and a command about them says why it cannot be.
func WithExcluded(names []string) Option {
	return func(s *service) { s.excluded = slices.Clone(names) }
}

// WithPasswords is how SetPassword reaches the users service; without it
// SetPassword is unavailable.
func WithPasswords(set func(ctx context.Context, name, password string) error) Option {
	return func(s *service) { s.passwords = set }
}

// service adapts a Supervisor to Service.
type service struct {
	sup       *supervisor.Supervisor
	node      string
	peers     Peers
	version   string
	excluded  []string
	passwords func(ctx context.Context, name, password string) error
	probe     *probe
	config    Config // nil: settings are never read again
}

var _ Service = service{}

func (s service) List(ctx context.Context, req ListRequest) ([]supervisor.Status, error) {
	var out []supervisor.Status
	switch {
	case req.All:
		out = s.listAll(ctx)
	case s.remote(req.Node):
		if s.peers == nil {
			return nil, s.alone(req.Node)
		}
		// That node's runtime fills in its own lag.
		return s.peers.List(ctx, req.Node)
	default:
		out = s.local(ctx)
	}
	// A node on its own reaches no NATS, so no consumer either.
	if s.peers != nil {
		s.peers.Lag(ctx, out)
		if req.All {
			// Lag may have waited its whole bound (JetStream electing a
			// stream's leader after a node was lost): the other nodes
			// are listed as the registry holds them now, not as before
			// that wait, so a node dropped meanwhile is not shown.
			out = s.refreshRemote(out)
		}
	}
	return out, nil
}

// refreshRemote replaces the other nodes' services in all with the
// registry's current records, keeping the lag found for each.
func (s service) refreshRemote(all []supervisor.Status) []supervisor.Status {
	type key struct{ node, name string }
	lag := map[key]*uint64{}
	out := make([]supervisor.Status, 0, len(all))
	for _, st := range all {
		if st.Node == s.node {
			out = append(out, st)
			continue
		}
		lag[key{st.Node, st.Name}] = st.Lag
	}
	for _, st := range s.others() {
		st.Lag = lag[key{st.Node, st.Name}]
		out = append(out, st)
	}
	return s.sorted(out)
}

// listAll is every node's services as the registry holds them, this
// node's from the supervisor itself: the registry answers at once for a
// node that hangs, where asking each runtime would wait for it.
func (s service) listAll(ctx context.Context) []supervisor.Status {
	out := s.local(ctx)
	if s.peers == nil {
		return out
	}
	return s.sorted(append(out, s.others()...))
}

// others is the other nodes' services as the registry holds them now.
func (s service) others() []supervisor.Status {
	var out []supervisor.Status
	for _, n := range s.peers.Nodes() {
		if n.Node == s.node {
			continue
		}
		for _, svc := range n.Services {
			out = append(out, supervisor.Status{
				Name: svc.Name, State: supervisor.State(svc.State), Node: n.Node, Addr: svc.Addr,
				Restarts: svc.Restarts, Since: svc.Since, LastError: svc.LastError,
				Version: svc.Version,
			})
		}
	}
	return out
}

// sorted orders a listing as `ocis list --all` shows it: this node first,
// the others by name, each node's services in their order.
func (s service) sorted(out []supervisor.Status) []supervisor.Status {
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
	if err := s.checkExcluded(req.Name, VerbKill); err != nil {
		return supervisor.Status{}, err
	}
	return s.decorate(s.sup.Kill(ctx, req.Name))
}

func (s service) Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	if s.remote(req.Node) {
		return s.relay(ctx, req, VerbRun)
	}
	if err := s.checkExcluded(req.Name, VerbRun); err != nil {
		return supervisor.Status{}, err
	}
	return s.decorate(s.sup.Start(ctx, req.Name))
}

func (s service) Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	if s.remote(req.Node) {
		return s.relay(ctx, req, VerbRestart)
	}
	if err := s.checkExcluded(req.Name, VerbRestart); err != nil {
		return supervisor.Status{}, err
	}
	if err := s.refresh(req.Name); err != nil {
		return supervisor.Status{}, err
	}
	return s.decorate(s.sup.Restart(ctx, req.Name))
}

func (s service) SetPassword(ctx context.Context, req PasswordRequest) (endpoint.Empty, error) {
	if s.passwords == nil {
		return endpoint.Empty{}, fmt.Errorf("%w: this runtime cannot set passwords", apierr.ErrUnavailable)
	}
	return endpoint.Empty{}, s.passwords(ctx, req.Name, req.New)
}

// local is this node's services as `ocis list` shows them: the
// supervisor's, with the version and what each running one's /readyz
// answers now, then the excluded ones.
func (s service) local(ctx context.Context) []supervisor.Status {
	out := s.sup.Statuses()
	for i := range out {
		out[i].Version = s.version
	}
	s.probe.health(ctx, out)
	for _, name := range s.excluded {
		out = append(out, supervisor.Status{Name: name, State: StateExcluded, Node: s.node, Version: s.version})
	}
	return out
}

// decorate adds the version to the status a command answers with.
func (s service) decorate(st supervisor.Status, err error) (supervisor.Status, error) {
	if err == nil {
		st.Version = s.version
	}
	return st, err
}

// checkExcluded refuses a command about a service this node does not
// run, saying how to run it.
func (s service) checkExcluded(name, verb string) error {
	if !slices.Contains(s.excluded, name) {
		return nil
	}
	return fmt.Errorf("%w: service %s is excluded on node %s (OCIS_RUN_SERVICES, OCIS_EXCLUDE_RUN_SERVICES), cannot %s it; start ocis server with it selected",
		apierr.ErrConflict, name, s.node, verb)
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
