package main

import (
	"context"
	"runtime/debug"
	"sync"
	"time"
)

// startGCPercent is the collector's GOGC while the family starts. Starting
// allocates about ten megabytes in a few tens of milliseconds (nats-server,
// JetStream's first streams, six metrics registries, the stores), of which
// a few stay live; at the default of 100 the heap's first goal is 4 MB, so
// the collector ran two or three times during the start, each time with
// its write barrier and assists slowing every goroutine that had work to
// do, on a machine with two CPUs. At 400 the first goal is 16 MB: no
// collection runs before every service is up, and the one that follows
// marks only what is live then. A service that fails to start ends the
// wait as well: the start is over, whatever its outcome.
const startGCPercent = 400

// collectAfter is how long after the family's start GOGC stays relaxed.
// The services' and the node's setup that waits for the start
// (service.AfterStart: JetStream streams, consumers, buckets) runs in the
// first tens of milliseconds after it and allocates as the start did; and
// putting GOGC back at the start itself began a cycle at once, the heap
// being past the default's 4 MB goal, whose stop-the-world pauses and
// assists landed on the first requests the family answered (its /readyz
// among them). A second later the collector marks what is live once that
// work is done; until then the heap may grow to five times what is live,
// a few megabytes more.
const collectAfter = time.Second

// startBound is how long what waits for the start of the family (the
// collector's setting, the node's NATS work) waits at most: a service
// still starting by then (its start timeout is 30 s) holds the rest back
// no longer.
const startBound = 5 * time.Second

// relaxGC raises GOGC to startGCPercent and returns what puts it back, safe
// to call more than once. An operator's own GOGC (getenv) is left alone,
// as is a collector that is off.
func relaxGC(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(startGCPercent)
	if old < 0 || old >= startGCPercent {
		debug.SetGCPercent(old)
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(func() { debug.SetGCPercent(old) }) }
}

// awaitStarted returns once started is closed (the supervisor's Started:
// every unit's first start has ended), bound has passed, or ctx is done,
// whichever comes first.
func awaitStarted(ctx context.Context, started <-chan struct{}, bound time.Duration) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-started:
	case <-timer.C:
	case <-ctx.Done():
	}
}
