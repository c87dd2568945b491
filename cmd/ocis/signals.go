package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
)

// addSignalActor adds the actor that ends the group on SIGINT or SIGTERM.
// A second signal during the graceful stop exits at once with status 1: the
// operator has decided not to wait.
func addSignalActor(g *run.Group, logger log.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	g.Add(func() error {
		select {
		case sig := <-sigs:
			level.Info(logger).Log("msg", "signal received, stopping gracefully; send another to exit at once", "signal", sig)
			go func() {
				sig := <-sigs
				fmt.Fprintf(os.Stderr, "ocis: second signal (%s), exiting without waiting\n", sig)
				os.Exit(1)
			}()
			return run.SignalError{Signal: sig}
		case <-quit:
			signal.Stop(sigs)
			return nil
		}
	}, func(error) {
		select {
		case <-quit:
		default:
			close(quit)
		}
	})
}
