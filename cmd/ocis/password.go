package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/term"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services/users"
)

// resetPasswordCommand returns `ocis users reset-password [--user NAME]`:
// the operator's way back into an account, the admin's above all, whether
// the server runs or not.
//
// With a runtime answering, the CLI asks it (the runtime token is the
// operator's credential, as for kill and run) and the runtime has the
// users service it runs set the password, through the service's own API
// with an admin token it signs for a minute. The change then is like any
// other: every older token of the account stops working at once, across
// processes and nodes, and user.password_changed is published. With no
// runtime, or none running users, the CLI opens the account store itself,
// which only works while no process holds it.
func resetPasswordCommand(a *app, d service.Descriptor) *ffcli.Command {
	c := newCtlFlags(d.Name+" reset-password", a.usage)
	cfg, ok := d.NewConfig().(*users.Config)
	if !ok {
		panic("the users descriptor makes no users.Config")
	}
	c.set.Register("", d.Name, cfg.RegisterFlags)
	var user string
	c.set.FlagSet().StringVar(&user, "user", "", "the account whose password to set (default: the admin account, --admin-user)")
	return &ffcli.Command{
		Name:       "reset-password",
		ShortUsage: "ocis users reset-password [--user NAME]",
		ShortHelp:  "set an account's password (default the admin's), the server running or not",
		LongHelp: `Set the password of an account, by default the admin account: the way
back in after a lost admin password. The new password is read from a
prompt without echo, or from the first line of stdin when it is not a
terminal (echo "$PW" | ocis users reset-password). It must follow the
password rule (at least 8 characters, letters mixed with digits or symbols).

With the server running, the runtime (found like ocis list finds it, and
authorised by the runtime token) has its users service set it. With the
server stopped, the account store (users.db) is changed directly. Either
way every older token of the account stops working.`,
		FlagSet: c.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("reset-password", args); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if user == "" {
				user = cfg.AdminUser
			}
			password, err := readNewPassword(a.stdin, a.stderr, user)
			if err != nil {
				return err
			}
			if err := users.CheckPassword(user, password); err != nil {
				return err
			}
			_, err = cl.SetPassword(ctx, control.PasswordRequest{Name: user, New: password})
			switch {
			case err == nil:
				fmt.Fprintf(a.stdout, "password of %s set through the running server at %s; older tokens of %s no longer work\n", user, c.settings.Addr, user)
				return nil
			case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, control.ErrUsersNotRunning):
				// No runtime, or none running users: the store itself.
			default:
				return fmt.Errorf("reset-password %s: %w", user, c.explain(err))
			}
			if _, err := users.SetPasswordOffline(cfg, c.shared, user, password); err != nil {
				if errors.Is(err, users.ErrStoreBusy) {
					return fmt.Errorf("%w, and no runtime running users answers at %s: stop that process (ocis users server?) and run this again, or have an admin set the password through its API (PUT /api/v1/users/%s/password)", err, c.settings.Addr, user)
				}
				return fmt.Errorf("reset-password %s: %w", user, err)
			}
			fmt.Fprintf(a.stdout, "password of %s set in the account store (no server was running); older tokens of %s no longer work\n", user, user)
			return nil
		},
	}
}

// readNewPassword reads the new password: from a prompt without echo,
// asked twice, when stdin is a terminal; otherwise from stdin's first line.
func readNewPassword(stdin *os.File, prompt io.Writer, user string) (string, error) {
	if stdin != nil && term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprintf(prompt, "new password for %s: ", user)
		first, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "again: ")
		second, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the two passwords differ; nothing changed")
		}
		return string(first), nil
	}
	if stdin == nil {
		return "", errors.New("no password: stdin is closed")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin: give it as the first line, or run this in a terminal to be prompted")
	}
	return line, nil
}

// runtimeIdentity is who the runtime is when it asks its users service to
// set a password: an admin with an id no account can have (ids are hex),
// so that the event's actor says the runtime did it.
func runtimeIdentity(node string) auth.Identity {
	return auth.Identity{ID: "runtime:" + node, Name: "runtime", Gen: 1, Admin: true}
}

// passwordSetter is how this node's control API sets a password: through
// the users service the supervisor runs here, on its own API, with an
// admin token the runtime signs for one minute from the shared secret.
func passwordSetter(sup *supervisor.Supervisor, shared *service.Shared, node string) func(ctx context.Context, name, password string) error {
	return func(ctx context.Context, name, password string) error {
		st, err := sup.Status(users.Name)
		if err != nil {
			return fmt.Errorf("%w: users does not run on node %s", control.ErrUsersNotRunning, node)
		}
		if st.State != supervisor.StateRunning {
			return fmt.Errorf("%w: users is %s on node %s", control.ErrUsersNotRunning, st.State, node)
		}
		keys, err := auth.NewKeys(shared.JWTSecret)
		if err != nil {
			return fmt.Errorf("%w: %v", apierr.ErrInternal, err)
		}
		token, _, err := keys.Sign(runtimeIdentity(node), time.Minute)
		if err != nil {
			return err
		}
		c, err := users.NewClient("http://"+service.Dialable(st.Addr), nil)
		if err != nil {
			return err
		}
		_, err = c.SetPassword(transport.WithBearer(ctx, token), users.SetPasswordRequest{Username: name, New: password})
		return err
	}
}
