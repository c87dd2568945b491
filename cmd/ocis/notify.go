package main

import (
	"context"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"

	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// addNotifyActor speaks systemd's notify protocol (Type=notify, see
// deploy/systemd/ocis.service) when systemd asks for it (NOTIFY_SOCKET):
// READY=1 once every service runs, STOPPING=1 as soon as the stop begins.
// Its interrupt runs early (it is added right after the signal actor), so
// systemd knows of the stop before the services drain.
func addNotifyActor(g *run.Group, logger log.Logger, sup *supervisor.Supervisor) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	logger = log.With(logger, "component", "systemd")
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		for {
			changed := sup.Changed()
			if sup.Ready() {
				notify(logger, daemon.SdNotifyReady+"\nSTATUS=every service runs")
				<-ctx.Done()
				return nil
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return nil
			}
		}
	}, func(error) {
		notify(logger, daemon.SdNotifyStopping+"\nSTATUS=stopping")
		cancel()
	})
}

// startWatchdog pings systemd's watchdog (WatchdogSec=, which sets
// WATCHDOG_USEC) at half its interval for as long as the process lives,
// its stop included, and returns what ends the pings. The pings come from
// a goroutine of the runtime itself: a wedged process stops pinging and
// systemd restarts it.
func startWatchdog(logger log.Logger) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		level.Warn(logger).Log("msg", "systemd watchdog setting ignored", "err", err)
	}
	if interval <= 0 || os.Getenv("NOTIFY_SOCKET") == "" {
		return func() {}
	}
	logger = log.With(logger, "component", "systemd")
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			notify(logger, daemon.SdNotifyWatchdog)
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// notify sends state to systemd; a failure is logged, never fatal.
func notify(logger log.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		level.Warn(logger).Log("msg", "notify systemd", "err", err)
	}
}
