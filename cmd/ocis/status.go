package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// registerStatus adds `ocis status`, for scripts and monitoring: one line,
// and exit 0 only when every service this node runs is running.
func registerStatus(a *app) {
	c := newCtlFlags("status", a.usage)
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "status",
		ShortUsage: "ocis status",
		ShortHelp:  "one line; exit 0 only when every service this node runs is running (excluded ones aside)",
		FlagSet:    c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("status", args); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			statuses, err := cl.List(ctx, control.ListRequest{})
			if err != nil {
				return c.explain(err)
			}
			line, ok := summary(statuses, time.Now())
			if !ok {
				return errors.New(line)
			}
			fmt.Fprintln(a.stdout, line)
			return nil
		},
	})
}

// summary is the line of `ocis status` and whether every service that is
// not excluded runs: "ok: 5 of 5 services running on node vm", or "not
// ok: …" naming each service that does not run, its state and last error.
func summary(statuses []supervisor.Status, now time.Time) (string, bool) {
	var (
		node              string
		running, selected int
		excluded, down    []string
	)
	for _, s := range statuses {
		node = s.Node
		switch s.State {
		case control.StateExcluded:
			excluded = append(excluded, s.Name)
			continue
		case supervisor.StateRunning:
			running++
		default:
			d := s.Name + " " + string(s.State)
			if s.LastError != "" {
				d += " (" + lastError(s, now) + ")"
			}
			down = append(down, d)
		}
		selected++
	}
	line := fmt.Sprintf("%d of %d services running on node %s", running, selected, node)
	if len(excluded) > 0 {
		line += fmt.Sprintf(" (excluded: %s)", strings.Join(excluded, ", "))
	}
	if len(down) > 0 {
		return "not ok: " + line + "; " + strings.Join(down, "; "), false
	}
	return "ok: " + line, true
}
