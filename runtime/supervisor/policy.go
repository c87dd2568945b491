package supervisor

import (
	"math/rand/v2"
	"time"
)

// Policy is how the supervisor treats failing services.
type Policy struct {
	// BackoffMin is the wait before the first restart; each further
	// failure within the window doubles it, up to BackoffMax.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// MaxFailures failures within FailureWindow mark a service failed.
	MaxFailures   int
	FailureWindow time.Duration
	// StartTimeout bounds the time from Run to a 200 from /readyz.
	StartTimeout time.Duration
	// StopGrace is how long past its own shutdown timeout a stopping
	// service is waited for; then it is abandoned and marked failed, so
	// that no stuck service holds up a command or the shutdown.
	StopGrace time.Duration
}

// DefaultPolicy restarts fast at first and gives up on a service that keeps
// failing for about twenty seconds, long enough for a briefly taken port to
// be freed. The stop grace is well past the two seconds a service's own
// stop may take beyond its shutdown timeout (docs/runtime.md).
func DefaultPolicy() Policy {
	return Policy{
		BackoffMin:    20 * time.Millisecond,
		BackoffMax:    10 * time.Second,
		MaxFailures:   10,
		FailureWindow: time.Minute,
		StartTimeout:  30 * time.Second,
		StopGrace:     5 * time.Second,
	}
}

// delay is the exponential backoff for the nth failure, with ±20% jitter so
// that services failing together do not restart in lockstep.
func (p Policy) delay(n int) time.Duration {
	d := p.BackoffMin
	for i := 1; i < n && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}
