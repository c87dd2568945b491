package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// registerList adds `ocis list [--all] [--json]`.
func registerList(a *app) {
	c := newCtlFlags("list", a.usage)
	var asJSON, all bool
	c.set.FlagSet().BoolVar(&asJSON, "json", false, "print the JSON array of the control API, every field")
	c.set.FlagSet().BoolVar(&all, "all", false, "list the services of every node, not only this one's")
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "list",
		ShortUsage: "ocis list [--all] [--json]",
		ShortHelp:  "show every service: state, health, node, address, restarts, uptime, version, last error; --all on every node",
		LongHelp: `Show every service of this node (--all: of every node).

STATE is the supervisor's (stopped, starting, running, stopping, backoff,
failed), or excluded for a service this node does not run
(OCIS_RUN_SERVICES, OCIS_EXCLUDE_RUN_SERVICES). HEALTH is what the
service's own /readyz answers now. LAG, shown when a service consumes
events, is how many it has not handled yet. LAST ERROR is the reason of
the last failure, with its age; "(recovered)" marks one from before the
service last became ready. The whole error is in --json, what led to it
in ` + "`ocis logs <service>`" + `.`,
		FlagSet: c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("list", args); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			statuses, err := cl.List(ctx, control.ListRequest{All: all})
			if err != nil {
				return c.explain(err)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			}
			return printTable(a.stdout, statuses, time.Now())
		},
	})
}

// printTable writes statuses as the table of `ocis list`, ages counted to
// now; a last error is cut at its first line. The LAG column (events a
// service's consumers have not handled yet) appears only when some service
// has one, so a table of services that consume no events stays as narrow
// as it was. Short cells keep a row within 100 columns unless its last
// error is long; that is never cut, because its end usually says why.
func printTable(w io.Writer, statuses []supervisor.Status, now time.Time) error {
	withLag := slices.ContainsFunc(statuses, func(s supervisor.Status) bool { return s.Lag != nil })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"SERVICE", "STATE", "HEALTH", "NODE", "ADDRESS", "RESTARTS", "UPTIME", "VERSION", "LAST ERROR"}
	if withLag {
		header = slices.Insert(header, 6, "LAG")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, s := range statuses {
		row := []string{s.Name, string(s.State), dash(s.Health), s.Node, dash(s.Addr), strconv.Itoa(s.Restarts),
			uptime(s, now), dash(s.Version), lastError(s, now)}
		if withLag {
			lag := "-"
			if s.Lag != nil {
				lag = strconv.FormatUint(*s.Lag, 10)
			}
			row = slices.Insert(row, 6, lag)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// uptime is how long a running service has been ready.
func uptime(s supervisor.Status, now time.Time) string {
	if s.State != supervisor.StateRunning || s.Since.IsZero() {
		return "-"
	}
	return age(now.Sub(s.Since))
}

// lastError is the first line of a service's last error with its age,
// marked as recovered when the service became ready since.
func lastError(s supervisor.Status, now time.Time) string {
	msg, _, _ := strings.Cut(s.LastError, "\n")
	if msg == "" {
		return "-"
	}
	if s.LastErrorAt.IsZero() {
		return msg // another node's: the registry keeps no age
	}
	msg = age(now.Sub(s.LastErrorAt)) + " ago: " + msg
	if s.State == supervisor.StateRunning && s.LastErrorAt.Before(s.Since) {
		msg = "(recovered) " + msg
	}
	return msg
}

// age is a duration in at most two units: 45s, 3m12s, 5h04m, 2d03h.
func age(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
