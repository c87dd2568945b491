package main

import (
	"context"
	"sync"
	"time"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// lagTimeout bounds the questions of one list about consumer lag: asked
// all at once, each one JetStream request; a list never waits longer for
// them, and shows no lag for those that did not answer.
const lagTimeout = time.Second

// Lag implements control.Peers: for every service that consumes events
// (service.Descriptor.Consumers), on any node, how many events its
// consumers there have not handled yet. The consumers are durable, so the
// lag of a stopped service is known too, and grows while it is stopped.
// A consumer that does not exist yet (the service never ran on that node)
// counts as no lag to show.
func (n *node) Lag(ctx context.Context, statuses []supervisor.Status) {
	if n.nc == nil || !n.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lagTimeout)
	defer cancel()
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
					return
				}
				total += lag.Total()
			}
			st.Lag = &total
		}(&statuses[i], d.Consumers(statuses[i].Node))
	}
	wg.Wait()
}
