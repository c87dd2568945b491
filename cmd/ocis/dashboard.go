package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/dashboard"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// registerDashboard adds `ocis dashboard`.
func registerDashboard(a *app) {
	c := newCtlFlags("dashboard", a.usage)
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "dashboard",
		ShortUsage: "ocis dashboard",
		ShortHelp:  "print a one-time login URL for the web dashboard at /ui/",
		LongHelp: fmt.Sprintf(`Ask the local runtime for a one-time login code and print the URL that
redeems it. Open it in a browser within %s: it opens a dashboard session
(%s at most, and it ends with the runtime) and is useless afterwards.
The dashboard shows every node's services and kills, runs and restarts
them on any node.`, dashboard.CodeTTL, dashboard.SessionTTL),
		FlagSet: c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("dashboard", args); err != nil {
				return err
			}
			// client loads the settings and finds the runtime, as for
			// every client verb; the login route is the dashboard's.
			if _, err := c.client(); err != nil {
				return err
			}
			token, err := c.settings.resolveToken(c.shared, false)
			if err != nil {
				token = "" // the runtime will answer 401; explain says why
			}
			login, url, err := dashboard.NewLogin(ctx, c.settings.Addr, token, nil)
			if err != nil {
				return fmt.Errorf("dashboard: %w", c.explain(err))
			}
			fmt.Fprintln(a.stdout, url)
			fmt.Fprintf(a.stderr, "open it within %s (until %s); it works once\n",
				time.Until(login.ExpiresAt).Round(time.Second), login.ExpiresAt.Local().Format(time.TimeOnly))
			return nil
		},
	})
}

// dashboardRoutes mounts the web dashboard on the control API's listener:
// it acts through the control API's endpoints, reads this node's log ring
// and its services' metrics registries in-process, and pushes a change as
// soon as the supervisor or the registry watcher reports one.
func dashboardRoutes(node string, e control.Endpoints, ring *logging.Ring, sup *supervisor.Supervisor, watcher *registry.Watcher, stop <-chan struct{}, logger log.Logger) control.HandlerOption {
	return dashboard.New(dashboard.Options{
		Node: node, Endpoints: e, Logs: ring, Gatherer: sup.Gatherer,
		Changed: sup.Changed, Subscribe: watcher.Subscribe, Stop: stop,
		Version: version, Logger: log.With(logger, "component", "dashboard"),
	}).Routes()
}
