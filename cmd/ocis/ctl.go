package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// ctlFlags are what every client verb needs to reach the runtime.
type ctlFlags struct {
	set      *config.Set
	shared   *service.Shared
	settings *runtimeSettings
}

func newCtlFlags(name string, usage io.Writer) *ctlFlags {
	c := &ctlFlags{set: config.NewSet(name, usage), shared: service.NewShared(), settings: newSettings()}
	c.set.Register("", "", c.shared.RegisterFlags)
	c.settings.registerClient(c.set)
	return c
}

// client loads the settings and returns a client of the runtime.
func (c *ctlFlags) client() (*control.Client, error) {
	if err := c.set.Load(func() (string, error) { return c.shared.ConfigPath(), nil }); err != nil {
		return nil, err
	}
	c.findRuntime()
	token, err := c.settings.resolveToken(c.shared, false)
	if err != nil {
		token = "" // the runtime will answer 401; explain says why
	}
	return control.NewClient(c.settings.Addr, token, nil)
}

// findRuntime prefers what the runtime of the base data path recorded
// (runtime.addr, runtime.token) over the config file and the defaults:
// a runtime started with other addresses, or a token from its own
// environment, is found from OCIS_BASE_DATA_PATH alone. A flag or an env
// var still wins.
func (c *ctlFlags) findRuntime() {
	given := func(flag string) bool {
		src := c.set.Source(flag)
		return src == "flag" || src == "env"
	}
	if addr := recordedAddr(c.shared); addr != "" && !given("runtime.addr") {
		c.settings.Addr = addr
	}
	if token := recordedToken(c.shared); token != "" && !given("runtime.token") {
		c.settings.Token = token
	}
}

// explain turns the errors a CLI user meets into one line that says what to
// do.
func (c *ctlFlags) explain(err error) error {
	switch {
	case errors.Is(err, control.ErrWrongToken):
		return fmt.Errorf("%v; copy ocis.env from the first node so that every node has the same OCIS_RUNTIME_TOKEN", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no runtime answers at %s; start one with `ocis server` (or point --runtime.addr / OCIS_RUNTIME_ADDR at it)", c.settings.Addr)
	case errors.Is(err, apierr.ErrUnauthenticated):
		return fmt.Errorf("the runtime at %s refused the token: %v; set OCIS_RUNTIME_TOKEN or use the base data path of that runtime (its token is in %s)", c.settings.Addr, err, tokenPath(c.shared))
	}
	return err
}

// command is one of kill, run and restart: a call of the control API about
// one service, printing the state it left the service in.
type command func(*control.Client, context.Context, control.ServiceRequest) (supervisor.Status, error)

// controlCommand returns `ocis <verb> [--node N] <service>`.
func controlCommand(a *app, verb, help string, call command) *ffcli.Command {
	c := newCtlFlags(verb, a.usage)
	var node string
	c.set.FlagSet().StringVar(&node, "node", "", "the node the service runs on (default: this one); the local runtime relays the command")
	return &ffcli.Command{
		Name:       verb,
		ShortUsage: fmt.Sprintf("ocis %s [--node N] <service>", verb),
		ShortHelp:  help,
		FlagSet:    c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Sprintf("%s takes one service name, got %d arguments", verb, len(args))}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			st, err := call(cl, ctx, control.ServiceRequest{Node: node, Name: args[0]})
			if err != nil {
				return fmt.Errorf("%s %s: %w", verb, args[0], c.explain(err))
			}
			if node != "" {
				fmt.Fprintf(a.stdout, "%s on %s: %s\n", st.Name, st.Node, st.State)
			} else {
				fmt.Fprintf(a.stdout, "%s: %s\n", st.Name, st.State)
			}
			return settled(verb, st)
		},
	}
}

// settled is the verdict of a command on the state it left the service
// in: kill must end stopped, run and restart running; anything else (a
// start that went to backoff or failed, a stop abandoned) is an error
// naming the service and its last error, so that scripts see exit 1.
func settled(verb string, st supervisor.Status) error {
	want := supervisor.StateRunning
	if verb == "kill" {
		want = supervisor.StateStopped
	}
	if st.State == want {
		return nil
	}
	msg := fmt.Sprintf("%s %s: it is %s, not %s", verb, st.Name, st.State, want)
	if st.LastError != "" {
		msg += "; last error: " + st.LastError
	}
	if verb != "kill" {
		msg += fmt.Sprintf("; see `ocis logs %s`", st.Name)
	}
	return errors.New(msg)
}
