package main

import (
	"context"
	"fmt"
	goruntime "runtime"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// version and commit are set by the linker (the Makefile passes
// -X main.version=… -X main.commit=…); they are the only package variables,
// because -X can set nothing else, and nothing writes them at run time.
var (
	version = "dev"
	commit  = "unknown"
)

// registerVersion adds `ocis version`.
func registerVersion(a *app) {
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "version",
		ShortUsage: "ocis version",
		ShortHelp:  "print version, commit and Go version",
		FlagSet:    a.flagSet("version"),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("version", args); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, versionString())
			return nil
		},
	})
}

// versionString is what `ocis version` prints.
func versionString() string {
	return fmt.Sprintf("ocis %s (commit %s, %s)", version, commit, goruntime.Version())
}
