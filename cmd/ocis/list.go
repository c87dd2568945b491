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
	c.set.FlagSet().BoolVar(&asJSON, "json", false, "print the JSON array of the control API")
	c.set.FlagSet().BoolVar(&all, "all", false, "list the services of every node, not only this one's")
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "list",
		ShortUsage: "ocis list [--all] [--json]",
		ShortHelp:  "show every service: state, node, address, restarts, since, last error; --all on every node",
		FlagSet:    c.set.FlagSet(),
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
// as it was.
func printTable(w io.Writer, statuses []supervisor.Status, now time.Time) error {
	withLag := slices.ContainsFunc(statuses, func(s supervisor.Status) bool { return s.Lag != nil })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if withLag {
		fmt.Fprintln(tw, "SERVICE\tSTATE\tNODE\tADDRESS\tRESTARTS\tLAG\tSINCE\tLAST ERROR")
	} else {
		fmt.Fprintln(tw, "SERVICE\tSTATE\tNODE\tADDRESS\tRESTARTS\tSINCE\tLAST ERROR")
	}
	for _, s := range statuses {
		addr := s.Addr
		if addr == "" {
			addr = "-"
		}
		lastErr := s.LastError
		if i := strings.IndexByte(lastErr, '\n'); i >= 0 {
			lastErr = lastErr[:i]
		}
		if lastErr == "" {
			lastErr = "-"
		}
		restarts := strconv.Itoa(s.Restarts)
		if withLag {
			lag := "-"
			if s.Lag != nil {
				lag = strconv.FormatUint(*s.Lag, 10)
			}
			restarts += "\t" + lag
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Node, addr, restarts,
			now.Sub(s.Since).Truncate(time.Second).String()+" ago", lastErr)
	}
	return tw.Flush()
}
