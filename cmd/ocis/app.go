package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Exit codes of the ocis command.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed, or the config is invalid
	exitUsage = 2 // the command line itself is wrong
)

// app is the command tree under construction: each register function adds
// one command to it, and run parses a command line and executes it.
type app struct {
	cat service.Catalogue
	// stdin is where `ocis users reset-password` reads a password; a
	// terminal is prompted without echo.
	stdin  *os.File
	stdout io.Writer
	stderr io.Writer
	// usage collects the help text every flag set writes; it is printed,
	// on stdout, only when help was asked for.
	usage *bytes.Buffer
	// verbs are the commands (server, list, …); services are `ocis <name>`,
	// listed after them.
	verbs    []*ffcli.Command
	services []*ffcli.Command
	// hidden are commands for the build, not for operators (config-doc):
	// they run but are not listed.
	hidden []*ffcli.Command
}

func newApp(cat service.Catalogue, stdout, stderr io.Writer) *app {
	return &app{cat: cat, stdin: os.Stdin, stdout: stdout, stderr: stderr, usage: &bytes.Buffer{}}
}

// flagSet returns a flag set named name that reports to the help text.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.usage)
	return fs
}

// run parses args, runs the command they name, and maps the outcome to an
// exit code, with one line on stderr for an error.
func (a *app) run(args []string) int {
	root := a.root()
	err := root.Parse(args)
	if err == nil {
		err = root.Run(context.Background())
	}
	var (
		uerr *usageError
		cerr *config.Error
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		_, _ = a.stdout.Write(a.usage.Bytes())
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(a.stderr, "ocis: %v\nRun 'ocis -h' for usage.\n", err)
		return exitUsage
	case errors.As(err, &cerr):
		fmt.Fprintf(a.stderr, "ocis: invalid config: %v\n", err)
		return exitError
	case strings.HasPrefix(err.Error(), "error parsing commandline arguments"):
		// Unknown flags and flag syntax, as reported by the flag package.
		// The root command has no flags of its own: a flag before the
		// command belongs after it.
		if len(args) > 0 && strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(a.stderr, "ocis: %v\nFlags go after the command they belong to, as in 'ocis list --json'. Run 'ocis -h' for the commands.\n", err)
			return exitUsage
		}
		fmt.Fprintf(a.stderr, "ocis: %v\nRun 'ocis <command> -h' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(a.stderr, "ocis: %v\n", err)
		return exitError
	}
}

// root is the `ocis` command holding every registered one.
func (a *app) root() *ffcli.Command {
	names := make([]string, 0, len(a.verbs))
	for _, c := range a.verbs {
		names = append(names, c.Name)
	}
	return &ffcli.Command{
		Name:        "ocis",
		ShortUsage:  "ocis <command> [flags] | ocis <service> server|health [flags]",
		LongHelp:    "One binary, a family of services, and the runtime that keeps them up.\nServices: " + strings.Join(a.cat.Names(), ", "),
		FlagSet:     a.flagSet("ocis"),
		Subcommands: append(append(append([]*ffcli.Command{}, a.verbs...), a.services...), a.hidden...),
		UsageFunc: func(c *ffcli.Command) string {
			listed := *c
			listed.Subcommands = append(append([]*ffcli.Command{}, a.verbs...), a.services...)
			return ffcli.DefaultUsageFunc(&listed)
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q; commands: %s; services: %s",
				args[0], strings.Join(names, ", "), strings.Join(a.cat.Names(), ", "))}
		},
	}
}

// usageError is a command line that names no command or a wrong one.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func noArgs(command string, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Sprintf("%s takes no arguments, got %q", command, strings.Join(args, " "))}
	}
	return nil
}
