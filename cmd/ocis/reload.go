package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/runtime/control"
)

// registerReload adds `ocis reload`.
func registerReload(a *app) {
	c := newCtlFlags("reload", a.usage)
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "reload",
		ShortUsage: "ocis reload",
		ShortHelp:  "read the config file again and restart exactly the services whose settings changed (as SIGHUP does)",
		LongHelp: "Reads flags, environment and config file as `ocis server` did at start (flags and its environment\n" +
			"still win) and restarts each running service whose settings changed; the others keep running.\n" +
			"To apply one service's change only, `ocis restart <service>` also reads the config file again.",
		FlagSet: c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("reload", args); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			report, err := cl.Reload(ctx, endpoint.Empty{})
			if err != nil {
				return fmt.Errorf("reload: %w", c.explain(err))
			}
			return printReload(a.stdout, report)
		},
	})
}

// printReload tells what a reload did; a restart that failed is an error.
func printReload(w io.Writer, r control.ReloadReport) error {
	list := func(names []string) string {
		if len(names) == 0 {
			return "-"
		}
		return strings.Join(names, ", ")
	}
	fmt.Fprintf(w, "restarted: %s\n", list(r.Restarted))
	if len(r.Updated) > 0 {
		fmt.Fprintf(w, "changed but not running (applied at their next start): %s\n", list(r.Updated))
	}
	fmt.Fprintf(w, "unchanged: %s\n", list(r.Unchanged))
	if len(r.NeedsFullRestart) > 0 {
		fmt.Fprintf(w, "changed, applied only when ocis server restarts: %s\n", list(r.NeedsFullRestart))
	}
	if len(r.Errors) == 0 {
		return nil
	}
	names := make([]string, 0, len(r.Errors))
	for name := range r.Errors {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		errs = append(errs, fmt.Errorf("reload: %s: %s; see `ocis logs %s`", name, r.Errors[name], name))
	}
	return errors.Join(errs...)
}
