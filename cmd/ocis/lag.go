package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// lagTimeout bounds the questions of one list about consumer lag: asked
// all at once, each one JetStream request; a list never waits longer for
// them, and shows no lag for those that did not answer. JetStream answers
// in milliseconds when the events stream has a leader, and not at all
// while it elects one (4 to 9 s after the server that led it is lost):
// waiting longer buys nothing then, and every list, what an operator
// reads exactly then, would wait that long.
const lagTimeout = 300 * time.Millisecond

// lagPause is how long lists show no lag and ask nothing after a question
// went unanswered, so that a stream electing its leader slows one list,
// not each.
const lagPause = 2 * time.Second

// Lag implements control.Peers: for every service that consumes events
// (service.Descriptor.Consumers), on any node, how many events its
// consumers there have not handled yet. The consumers are durable, so the
// lag of a stopped service is known too, and grows while it is stopped.
// A consumer that does not exist yet (the service never ran on that node)
// counts as no lag to show.
func (n *node) Lag(ctx context.Context, statuses []supervisor.Status) {
	if n.nc == nil || !n.nc.IsConnected() || time.Now().UnixNano() < n.lagPausedUntil.Load() {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, lagTimeout)
	defer cancel()
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range statuses {
		d, ok := n.cat.Lookup(statuses[i].Name)
		if !ok || d.Consumers == nil {
			continue
		}
		wg.Add(1)
		go func(st *supervisor.Status, names []string) {
			defer wg.Done()
			var total uint64
			for _, name := range names {
				lag, err := events.ConsumerLag(ctx, n.nc, "", name)
				if err != nil {
					failed.Store(true)
					return
				}
				total += lag.Total()
			}
			st.Lag = &total
		}(&statuses[i], d.Consumers(statuses[i].Node))
	}
	wg.Wait()
	if failed.Load() && ctx.Err() != nil && parent.Err() == nil {
		n.lagPausedUntil.Store(time.Now().Add(lagPause).UnixNano())
	}
}
