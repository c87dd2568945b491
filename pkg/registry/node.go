package registry

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// StateRunning is the state of a service that takes requests; only such
// services of other nodes are routed to.
const StateRunning = "running"

// NodeRecord is what one node publishes under its key in the registry
// bucket: who runs it and what each of its services is doing. The runtime
// builds it from its supervisor's state; every address in it must be
// dialable from the other nodes (the advertise host, never 0.0.0.0, and
// 127.0.0.1 only when every node shares one machine).
type NodeRecord struct {
	Node     string          `json:"node"`
	Runtime  RuntimeInfo     `json:"runtime"`
	Services []ServiceRecord `json:"services"`
}

// RuntimeInfo identifies the runtime process behind a node.
type RuntimeInfo struct {
	// InstanceID is random per process start (NewInstanceID): two
	// processes claiming one node name are told apart by it.
	InstanceID string `json:"instance_id"`
	// ControlAddr is the runtime's control API, dialable by other nodes.
	ControlAddr string    `json:"control_addr,omitempty"`
	Version     string    `json:"version,omitempty"`
	StartedAt   time.Time `json:"started_at"`
}

// ServiceRecord is one service of a node, in whatever state it is.
type ServiceRecord struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Addr is the service's primary address, dialable by other nodes;
	// empty while it has none.
	Addr   string   `json:"addr,omitempty"`
	Routes []string `json:"routes,omitempty"`
	// Public are the patterns of the service's routes that need no
	// token (Instance.Public).
	Public    []string  `json:"public,omitempty"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Version   string    `json:"version,omitempty"`
}

// Instances returns the instances the record announces: its services that
// are running and have an address.
func (r NodeRecord) Instances() []Instance {
	var out []Instance
	for _, s := range r.Services {
		if s.State == StateRunning && s.Addr != "" {
			out = append(out, Instance{Service: s.Name, Node: r.Node, Addr: s.Addr, Routes: slices.Clone(s.Routes), Public: slices.Clone(s.Public)})
		}
	}
	return out
}

// NewInstanceID returns a random identity for one start of a runtime.
func NewInstanceID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// ValidateNodeName checks that name can name a node: 1 to 64 of
// [A-Za-z0-9_-], so that it is a registry key and a NATS subject token.
// (A loop, not a regexp: `{1,64}` compiles to 64 copies of the class, and
// compiling it at package init cost every start of the binary, `ocis
// version` included, a fifth of a millisecond.)
func ValidateNodeName(name string) error {
	if len(name) < 1 || len(name) > 64 || strings.IndexFunc(name, notNodeNameRune) >= 0 {
		return fmt.Errorf("node name %q: want 1 to 64 letters, digits, _ or - (--node, OCIS_NODE)", name)
	}
	return nil
}

// notNodeNameRune reports whether r may not appear in a node name.
func notNodeNameRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		return false
	}
	return true
}

// NodeName turns a host name into a node name: its first label with every
// character outside [A-Za-z0-9_-] replaced by "-"; "node" when nothing is
// left.
func NodeName(hostname string) string {
	short, _, _ := strings.Cut(hostname, ".")
	name := strings.Map(func(r rune) rune {
		if notNodeNameRune(r) {
			return '-'
		}
		return r
	}, short)
	if len(name) > 64 {
		name = name[:64]
	}
	if strings.Trim(name, "-") == "" {
		return "node"
	}
	return name
}

// ErrNodeTaken is matched (errors.Is) by a NodeTakenError.
var ErrNodeTaken = errors.New("node name taken")

// NodeTakenError says that another live runtime holds a node name.
type NodeTakenError struct {
	Node string
	// Holder is the runtime that holds the name.
	Holder RuntimeInfo
}

func (e *NodeTakenError) Error() string {
	where := ""
	if e.Holder.ControlAddr != "" {
		where = ", control API " + e.Holder.ControlAddr
	}
	return fmt.Sprintf("node name %q is taken by another live runtime (instance %s%s, started %s): give this node its own name with --node or OCIS_NODE, or stop the other one",
		e.Node, e.Holder.InstanceID, where, e.Holder.StartedAt.Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrNodeTaken) hold.
func (e *NodeTakenError) Unwrap() error { return ErrNodeTaken }
