package service

import "sync"

// AfterStart returns a, its Execute called only once started is closed
// (Env.Started: the family's first start has ended) or a is interrupted,
// whichever comes first. A nil started waits for nothing.
//
// It is for a service's work that no request needs before it can be
// served correctly (attaching an events consumer, binding the events
// stream, opening the proxy's placement bucket): on two CPUs the start is
// CPU-bound, and that work, done during it, delays the family's ready.
// The service is ready without it; the work begins a few tens of
// milliseconds later and retries on its own until it succeeds.
//
// Execute is called even when the interrupt came first, so that a
// publisher still drains what it held (its Interrupt, already called,
// makes it drain and return at once); a's Interrupt must therefore work
// before its Execute, as events.Publisher's and events.Consumer's do.
func AfterStart(started <-chan struct{}, a Actor) Actor {
	if started == nil {
		return a
	}
	stop := make(chan struct{})
	var once sync.Once
	return Actor{
		Execute: func() error {
			select {
			case <-started:
			case <-stop:
			}
			return a.Execute()
		},
		Interrupt: func(err error) {
			once.Do(func() { close(stop) })
			a.Interrupt(err)
		},
	}
}
