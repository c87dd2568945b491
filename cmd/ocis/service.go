package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// registerService adds `ocis <service>` with its verbs server and health.
func registerService(a *app, d service.Descriptor) {
	a.services = append(a.services, &ffcli.Command{
		Name:        d.Name,
		ShortUsage:  fmt.Sprintf("ocis %s server|health [flags]", d.Name),
		ShortHelp:   d.Summary,
		FlagSet:     a.flagSet(d.Name),
		Subcommands: []*ffcli.Command{standaloneCommand(a, d), healthCommand(a, d)},
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q for service %s; use server or health", args[0], d.Name)}
		},
	})
}
