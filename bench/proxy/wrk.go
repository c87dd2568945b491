package main

import (
	"context"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// wrk runs wrk against url for d with the configured threads and
// connections and the bearer token.
func (b *bench) wrk(ctx context.Context, url, token string, d time.Duration) (benchkit.WrkResult, error) {
	return benchkit.Wrk(ctx, b.kids, b.env, benchkit.Load{
		URL: url, Threads: b.cfg.threads, Conns: b.cfg.conns, Duration: d,
		Headers: []string{"Authorization: Bearer " + token},
	})
}
