package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// grid is what the page shows: one row per node, one column per service.
type grid struct {
	Node     string   // this node
	Services []string // the columns, in the order the nodes list them
	Rows     []row
	Error    string // why the listing is incomplete, if it is
}

type row struct {
	Node  string
	Self  bool
	Cells []cell
}

// cell is one service on one node; Present is false where the node does
// not know the service at all.
type cell struct {
	Node, Service string
	Present       bool
	Self          bool // on this node, whose logs and metrics are at hand
	State         string
	Health        string
	Restarts      int
	Since         time.Time
	Version       string
	LastError     string
	Traffic       Traffic
	HasTraffic    bool // the service's metrics are read on this node
}

// ID is the stem of the element ids of the cell, which survive a
// re-render so that the keyboard focus stays on the same button. Node
// and service names are [A-Za-z0-9_-].
func (c cell) ID() string { return c.Node + "--" + c.Service }

// Uptime is how long a running service has run; empty otherwise.
func (c cell) Uptime(now time.Time) string {
	if c.State != string(supervisor.StateRunning) || c.Since.IsZero() {
		return ""
	}
	return formatAge(now.Sub(c.Since))
}

// The commands each state takes, as the supervisor's command table
// answers them (runtime/supervisor/commands.go): a button that would be
// refused is disabled.
func (c cell) CanKill() bool {
	switch supervisor.State(c.State) {
	case supervisor.StateStarting, supervisor.StateRunning, supervisor.StateBackoff:
		return true
	}
	return false
}

func (c cell) CanRun() bool {
	switch supervisor.State(c.State) {
	case supervisor.StateStopped, supervisor.StateFailed:
		return true
	}
	return false
}

func (c cell) CanRestart() bool { return c.CanKill() || c.CanRun() }

// Rate and P99 are the cell's traffic as text.
func (c cell) Rate() string { return c.Traffic.rateText() }
func (c cell) P99() string  { return c.Traffic.p99Text() }

// build reads every node's services through the control API's
// endpoints, and this node's request rates from its services' own
// registries.
func (d *Dashboard) build(ctx context.Context) grid {
	g := grid{Node: d.opts.Node}
	statuses, err := endpoint.Call[control.ListRequest, []supervisor.Status](ctx, d.opts.Endpoints.List, control.ListRequest{All: true})
	if err != nil {
		g.Error = err.Error()
	}
	nodes, err := endpoint.Call[endpoint.Empty, []registry.Node](ctx, d.opts.Endpoints.Nodes, endpoint.Empty{})
	if err != nil && g.Error == "" {
		g.Error = err.Error()
	}
	now := d.opts.Now()
	byNode := map[string]map[string]supervisor.Status{}
	order := []string{d.opts.Node}
	add := func(node string) {
		if _, ok := byNode[node]; !ok {
			byNode[node] = map[string]supervisor.Status{}
			if node != d.opts.Node {
				order = append(order, node)
			}
		}
	}
	add(d.opts.Node)
	for _, st := range statuses {
		add(st.Node)
		byNode[st.Node][st.Name] = st
		if !slices.Contains(g.Services, st.Name) {
			g.Services = append(g.Services, st.Name)
		}
	}
	// A node that announces no service still gets its row.
	for _, n := range nodes {
		add(n.Node)
	}
	slices.Sort(order[1:])
	for _, node := range order {
		r := row{Node: node, Self: node == d.opts.Node}
		for _, name := range g.Services {
			st, ok := byNode[node][name]
			c := cell{Node: node, Service: name, Present: ok, Self: r.Self}
			if ok {
				c.State, c.Health, c.Restarts, c.Since = string(st.State), st.Health, st.Restarts, st.Since
				c.Version, c.LastError = st.Version, st.LastError
				if r.Self && d.opts.Gatherer != nil {
					c.Traffic = d.rates.read(name, d.opts.Gatherer(name), now)
					c.HasTraffic = c.Traffic.Measured
				}
			}
			r.Cells = append(r.Cells, c)
		}
		g.Rows = append(g.Rows, r)
	}
	return g
}

// formatAge is a duration as an operator reads it: "42s", "5m 3s",
// "3h 12m", "4d 2h".
func formatAge(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// formatDuration is a latency with three significant digits at most.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return formatFloat(float64(d)/float64(time.Microsecond), 0) + " µs"
	case d < time.Second:
		return formatFloat(float64(d)/float64(time.Millisecond), 1) + " ms"
	}
	return formatFloat(d.Seconds(), 2) + " s"
}

func formatFloat(f float64, prec int) string {
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
