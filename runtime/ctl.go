package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// ctlFlags are what every client verb needs to reach the runtime.
type ctlFlags struct {
	set      *config.Set
	shared   *service.Shared
	settings *Settings
}

func newCtlFlags(name string, usage io.Writer) *ctlFlags {
	c := &ctlFlags{set: config.NewSet(name, usage), shared: service.NewShared(), settings: newSettings()}
	c.set.Register("", "", c.shared.RegisterFlags)
	c.settings.registerClient(c.set)
	return c
}

// client loads the settings and returns a client of the runtime.
func (c *ctlFlags) client() (*Client, error) {
	if err := c.set.Load(func() (string, error) { return c.shared.ConfigPath(), nil }); err != nil {
		return nil, err
	}
	token, err := c.settings.resolveToken(c.shared, false)
	if err != nil {
		token = "" // the runtime will answer 401; the hint below says why
	}
	return NewClient(c.settings.Addr, token, nil)
}

// explain turns the errors a CLI user meets into one line that says what to
// do.
func (c *ctlFlags) explain(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no runtime answers at %s; start one with `ocis server` (or point --runtime.addr / OCIS_RUNTIME_ADDR at it)", c.settings.Addr)
	case errors.Is(err, apierr.ErrUnauthenticated):
		return fmt.Errorf("the runtime at %s refused the token: %v; set OCIS_RUNTIME_TOKEN or use the base data path of that runtime (its token is in %s)", c.settings.Addr, err, tokenPath(c.shared))
	}
	return err
}

func listCommand(usage io.Writer, stdout io.Writer) *ffcli.Command {
	c := newCtlFlags("list", usage)
	var asJSON bool
	c.set.FlagSet().BoolVar(&asJSON, "json", false, "print the JSON array of the control API")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "ocis list [--json]",
		ShortHelp:  "show every service: state, node, address, restarts, since, last error",
		FlagSet:    c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("list", args); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			statuses, err := cl.List(ctx, endpoint.Empty{})
			if err != nil {
				return c.explain(err)
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			}
			return printTable(stdout, statuses, time.Now())
		},
	}
}

func printTable(w io.Writer, statuses []Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tNODE\tADDRESS\tRESTARTS\tSINCE\tLAST ERROR")
	for _, s := range statuses {
		addr := s.Addr
		if addr == "" {
			addr = "-"
		}
		lastErr := s.LastError
		if i := strings.IndexByte(lastErr, '\n'); i >= 0 {
			lastErr = lastErr[:i]
		}
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.State, s.Node, addr, s.Restarts,
			now.Sub(s.Since).Truncate(time.Second).String()+" ago", lastErr)
	}
	return tw.Flush()
}

func controlCommand(verb, help string, usage io.Writer, stdout io.Writer, call func(*Client, context.Context, ServiceRequest) (Status, error)) *ffcli.Command {
	c := newCtlFlags(verb, usage)
	return &ffcli.Command{
		Name:       verb,
		ShortUsage: fmt.Sprintf("ocis %s <service>", verb),
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
			st, err := call(cl, ctx, ServiceRequest{Name: args[0]})
			if err != nil {
				return c.explain(err)
			}
			fmt.Fprintf(stdout, "%s: %s\n", st.Name, st.State)
			if st.State != StateRunning && verb != "kill" && st.LastError != "" {
				fmt.Fprintf(stdout, "last error: %s\n", st.LastError)
			}
			return nil
		},
	}
}
