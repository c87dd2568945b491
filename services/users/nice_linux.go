package users

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// atLowestPriority runs fn on an OS thread of its own at the lowest CPU
// priority (nice 19), so that a password check running flat out yields the
// CPU to every other request the moment one is ready. The goroutine exits
// still locked to that thread, which makes Go retire the thread instead of
// handing its lowered priority to other goroutines.
func atLowestPriority(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Best effort: where the priority cannot be lowered, fn still
		// runs, only without the courtesy.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		done <- fn()
	}()
	return <-done
}
