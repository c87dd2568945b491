package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// registerService adds `ocis <service>` with its verbs server and health.
func registerService(a *app, d service.Descriptor) {
	verbs := "server or health"
	subs := []*ffcli.Command{standaloneCommand(a, d), healthCommand(a, d)}
	if d.Name == storage.Name {
		// Where each user's files live (docs/distribution.md).
		verbs = "server, health or placement"
		subs = append(subs, placementCommand(a))
	}
	if d.Name == users.Name {
		// The way back in after a lost admin password.
		verbs = "server, health or reset-password"
		subs = append(subs, resetPasswordCommand(a, d))
	}
	a.services = append(a.services, &ffcli.Command{
		Name:        d.Name,
		ShortUsage:  fmt.Sprintf("ocis %s %s [flags]", d.Name, subNames(subs)),
		ShortHelp:   d.Summary,
		FlagSet:     a.flagSet(d.Name),
		Subcommands: subs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q for service %s; use %s", args[0], d.Name, verbs)}
		},
	})
}

// subNames is the usage line's list of a service's subcommands.
func subNames(subs []*ffcli.Command) string {
	names := make([]string, len(subs))
	for i, c := range subs {
		names[i] = c.Name
	}
	return strings.Join(names, "|")
}
