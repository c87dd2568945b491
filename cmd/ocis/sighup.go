package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
)

// addReloadActor adds the actor that reloads the settings on SIGHUP, as
// `ocis reload` does (liveConfig.Reload logs what it restarted). SIGHUP
// is caught from here on, so it never ends the process.
func addReloadActor(g *run.Group, logger log.Logger, live *liveConfig) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				level.Info(logger).Log("msg", "SIGHUP received, reloading the settings")
				if _, err := live.Reload(ctx); err != nil {
					level.Error(logger).Log("msg", "reload refused, nothing changed", "err", err)
				}
			case <-ctx.Done():
				return nil
			}
		}
	}, func(error) {
		cancel()
	})
}
