package runtime

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// Exit codes of the ocis command.
const (
	ExitOK     = 0
	ExitError  = 1 // the command ran and failed, or the config is invalid
	ExitUsage  = 2 // the command line itself is wrong
	exitHelped = -1
)

// usageError is a command line that names no command or a wrong one.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Main runs the ocis command with args (without the program name) and
// returns the process exit code.
func Main(args []string, cat service.Catalogue, stdout, stderr io.Writer) int {
	var usage bytes.Buffer
	root := rootCommand(cat, &usage, stdout, stderr)
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
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(usage.Bytes())
		return ExitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "ocis: %v\nRun 'ocis -h' for usage.\n", err)
		return ExitUsage
	case errors.As(err, &cerr):
		fmt.Fprintf(stderr, "ocis: invalid config: %v\n", err)
		return ExitError
	case strings.HasPrefix(err.Error(), "error parsing commandline arguments"):
		// Unknown flags and flag syntax, as reported by the flag package.
		fmt.Fprintf(stderr, "ocis: %v\nRun 'ocis <command> -h' for usage.\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "ocis: %v\n", err)
		return ExitError
	}
}

func rootCommand(cat service.Catalogue, usage io.Writer, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ocis", flag.ContinueOnError)
	fs.SetOutput(usage)
	subs := []*ffcli.Command{
		serverCommand(cat, usage, stdout, stderr),
		initCommand(usage, stdout),
		listCommand(usage, stdout),
		controlCommand("kill", "stop one service gracefully; it is not restarted", usage, stdout, (*Client).Kill),
		controlCommand("run", "start a stopped or failed service", usage, stdout, (*Client).Run),
		controlCommand("restart", "stop then start one service", usage, stdout, (*Client).Restart),
		versionCommand(usage, stdout),
	}
	commands := make([]string, 0, len(subs))
	for _, c := range subs {
		commands = append(commands, c.Name)
	}
	for _, d := range cat {
		subs = append(subs, serviceCommand(cat, d, usage, stdout, stderr))
	}
	return &ffcli.Command{
		Name:        "ocis",
		ShortUsage:  "ocis <command> [flags] | ocis <service> server|health [flags]",
		LongHelp:    "One binary, a family of services, and the runtime that keeps them up.\nServices: " + strings.Join(cat.Names(), ", "),
		FlagSet:     fs,
		Subcommands: subs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q; commands: %s; services: %s",
				args[0], strings.Join(commands, ", "), strings.Join(cat.Names(), ", "))}
		},
	}
}

func versionCommand(usage io.Writer, stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(usage)
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "ocis version",
		ShortHelp:  "print version, commit and Go version",
		FlagSet:    fs,
		Exec: func(context.Context, []string) error {
			fmt.Fprintln(stdout, VersionString())
			return nil
		},
	}
}

func initCommand(usage io.Writer, stdout io.Writer) *ffcli.Command {
	set := config.NewSet("init", usage)
	shared := service.NewShared()
	var (
		password string
		force    bool
	)
	set.Register("", "", func(fs *flag.FlagSet) {
		fs.StringVar(&shared.BaseDataPath, "base-data-path", shared.BaseDataPath, "where services keep their data and the config file")
		fs.StringVar(&shared.ConfigFile, "config-file", shared.ConfigFile, "config file to write (default <base-data-path>/ocis.env)")
	})
	set.Register("", "init", func(fs *flag.FlagSet) {
		fs.StringVar(&password, "admin-password", "", "admin password (default: generated and printed once)")
		fs.BoolVar(&force, "force", false, "overwrite an existing config")
	})
	return &ffcli.Command{
		Name:       "init",
		ShortUsage: "ocis init [--admin-password P] [--force]",
		ShortHelp:  "write the config with a fresh JWT secret and admin password",
		FlagSet:    set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("init", args); err != nil {
				return err
			}
			if err := set.Load(func() (string, error) { return "", nil }); err != nil {
				return err
			}
			return initConfig(shared.ConfigPath(), password, force, stdout)
		},
	}
}

func serverCommand(cat service.Catalogue, usage io.Writer, stdout, stderr io.Writer) *ffcli.Command {
	f := newFamily(cat, usage)
	return &ffcli.Command{
		Name:       "server",
		ShortUsage: "ocis server [flags]",
		ShortHelp:  "start the runtime and its services; blocks until SIGINT or SIGTERM",
		FlagSet:    f.set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("server", args); err != nil {
				return err
			}
			return serve(cat, f, stdout, stderr)
		},
	}
}

func noArgs(command string, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Sprintf("%s takes no arguments, got %q", command, strings.Join(args, " "))}
	}
	return nil
}
