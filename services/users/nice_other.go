//go:build !linux

package users

// atLowestPriority runs fn; lowering one thread's priority is Linux-only.
func atLowestPriority(fn func() error) error { return fn() }
