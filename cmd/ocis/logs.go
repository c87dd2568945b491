package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/runtime/control"
)

// registerLogs adds `ocis logs [-f] [-n N] <service>`.
func registerLogs(a *app) {
	c := newCtlFlags("logs", a.usage)
	var (
		follow bool
		lines  int
	)
	fs := c.set.FlagSet()
	fs.BoolVar(&follow, "f", false, "follow: print new lines as they come, until interrupted")
	fs.BoolVar(&follow, "follow", false, "same as -f")
	fs.IntVar(&lines, "n", control.DefaultLogLines, fmt.Sprintf("how many recent lines to print first (0 to %d)", control.MaxLogLines))
	fs.IntVar(&lines, "lines", control.DefaultLogLines, "same as -n")
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "logs",
		ShortUsage: "ocis logs [-f] [-n N] <service>",
		ShortHelp:  "a service's recent log lines, kept by the runtime; -f follows",
		LongHelp: fmt.Sprintf(`Print the recent log lines of one service of this node's runtime: every
line it logged with service=<name>, the supervisor's about it included
(state changes and their errors). The runtime keeps the last %d lines or
%d KiB of each service, whichever is less; "runtime" names its own.
With -f, new lines follow until Ctrl-C.`, control.MaxLogLines, 256),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Sprintf("logs takes one service name, got %d arguments", len(args))}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			// Ctrl-C ends a follow cleanly, exit 0.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = cl.Logs(ctx, control.LogsRequest{Name: args[0], Lines: lines, Follow: follow}, a.stdout)
			if err != nil {
				return fmt.Errorf("logs %s: %w", args[0], c.explain(err))
			}
			return nil
		},
	})
}
