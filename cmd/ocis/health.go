package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// healthTimeout bounds the whole health check, connection included.
const healthTimeout = 3 * time.Second

// healthCommand returns `ocis <service> health`.
func healthCommand(a *app, d service.Descriptor) *ffcli.Command {
	s := newStandalone(d, a.usage)
	return &ffcli.Command{
		Name:       "health",
		ShortUsage: fmt.Sprintf("ocis %s health [flags]", d.Name),
		ShortHelp:  fmt.Sprintf("exit 0 when %s's /healthz answers 200", d.Name),
		FlagSet:    s.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("health", args); err != nil {
				return err
			}
			if err := s.load(); err != nil {
				return err
			}
			url := "http://" + service.Dialable(s.cfg.Base().DebugAddr) + "/healthz"
			if err := probe(ctx, &http.Client{Timeout: healthTimeout}, url); err != nil {
				return fmt.Errorf("%s is not healthy: %w", d.Name, err)
			}
			fmt.Fprintf(a.stdout, "%s is healthy (%s)\n", d.Name, url)
			return nil
		},
	}
}

// probe asks url once and wants 200.
func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
