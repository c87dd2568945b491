package endpoint

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is the context the timeout middleware hands an endpoint: a
// context with a deadline whose machinery is built only when someone
// watches it. context.WithTimeout costs every call a timer context, a
// runtime timer (set, then stopped), a cancel closure and, under a
// cancellable parent such as a request's, an entry in the parent's
// children map: about six allocations and two timer-heap operations,
// paid by the many endpoints that never look at their context. Here the
// deadline is known from the start (Deadline), and the first Done, or
// the first Err or Value once the call is over, builds the same
// context.WithDeadline child that context.WithTimeout would have built,
// which answers every call from then on; so a handler that selects on
// Done still sees it closed at the deadline, or when the client goes
// away, and context.Cause keeps working.
//
// "Over" means the deadline passed, the parent ended, or the call
// returned (release): before any of these, Err is nil and Value is the
// parent's, which is what the stdlib child would answer too.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	// released is set when the endpoint returned: from then on the
	// context is cancelled, as context.WithTimeout's cancel makes it.
	released atomic.Bool
	// armed holds the real child once built; mu serialises its building
	// with release.
	armed atomic.Pointer[armedCtx]
	mu    sync.Mutex
}

// armedCtx is the stdlib child a deadlineCtx hands its calls to once it
// is watched.
type armedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// withDeadline returns a context that ends d from now, or with parent;
// the caller must release it when the call returns.
func withDeadline(parent context.Context, d time.Duration) *deadlineCtx {
	deadline := time.Now().Add(d)
	if cur, ok := parent.Deadline(); ok && cur.Before(deadline) {
		deadline = cur
	}
	return &deadlineCtx{parent: parent, deadline: deadline}
}

// Deadline is the earlier of the parent's deadline and the timeout's.
func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done builds the real child, whose channel closes at the deadline, when
// the parent ends, or at release.
func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().Done() }

// Err is nil until the call is over; from then on it is the real child's
// answer, built at the first look, so Err and Done never disagree.
func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if c.released.Load() || c.parent.Err() != nil || !time.Now().Before(c.deadline) {
		return c.arm().Err()
	}
	return nil
}

// Value is the parent's until the call is over, and then the real
// child's, so that context.Cause, which looks its answer up through
// Value, finds the child's cause (DeadlineExceeded, Canceled) rather than
// the parent's. A parent that ended answers with its own cause either
// way, as the child would.
func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	if c.released.Load() || !time.Now().Before(c.deadline) {
		return c.arm().Value(key)
	}
	return c.parent.Value(key)
}

// String names the context for debugging, as the stdlib's do.
func (c *deadlineCtx) String() string {
	return "endpoint.withDeadline(" + c.deadline.String() + ")"
}

// arm builds the real child once, cancelled at once when the call has
// already returned.
func (c *deadlineCtx) arm() context.Context {
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.armed.Load()
	if a == nil {
		ctx, cancel := context.WithDeadline(c.parent, c.deadline)
		a = &armedCtx{ctx: ctx, cancel: cancel}
		if c.released.Load() {
			cancel()
		}
		c.armed.Store(a)
	}
	return a.ctx
}

// release ends the context when the call returns, as the cancel of
// context.WithTimeout does: whatever the endpoint left running sees Done
// closed and Err Canceled. A context never watched has nothing to stop.
func (c *deadlineCtx) release() {
	c.released.Store(true)
	c.mu.Lock()
	a := c.armed.Load()
	c.mu.Unlock()
	if a != nil {
		a.cancel()
	}
}
