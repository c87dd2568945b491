package supervisor

import (
	"fmt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// The errors of the control API.
var (
	ErrUnknownService = apierr.New(apierr.CodeNotFound, "runtime.unknown_service", "unknown service")
	ErrWrongState     = apierr.New(apierr.CodeConflict, "runtime.wrong_state", "service is")
	ErrShuttingDown   = apierr.New(apierr.CodeUnavailable, "runtime.shutting_down", "runtime is shutting down")
)

// cmdKind is an operator's command.
type cmdKind int

const (
	cmdKill cmdKind = iota
	cmdRun
	cmdRestart
)

func (k cmdKind) String() string {
	return [...]string{"kill", "run", "restart"}[k]
}

type command struct {
	kind  cmdKind
	reply chan error
}

// action is what a unit does with a command.
type action int

const (
	refuse  action = iota // answer 409 naming the state; nothing changes
	start                 // start afresh, forgetting past failures
	stop                  // stop the instance, if any, and stay stopped
	restart               // stop the instance, if any, and start again
)

// commandTable is the answer to each command in each state. A stopping
// unit is not in it: it takes no command until its stop is over (a stop is
// bounded), and the command is then answered from the state it reached.
func commandTable() map[State][3]action {
	return map[State][3]action{
		//              kill     run     restart
		StateStopped:  {refuse, start, start},
		StateStarting: {stop, refuse, restart},
		StateRunning:  {stop, refuse, restart},
		StateBackoff:  {stop, refuse, restart},
		StateFailed:   {refuse, start, start},
	}
}

// handle answers c from the command table. in is the unit's instance, or
// nil between instances. It reports whether the unit's state changed, so
// that the waiting caller goes back to the loop.
func (u *unit) handle(c command, in *instance) bool {
	st := u.getState()
	switch commandTable()[st][c.kind] {
	case refuse:
		c.reply <- fmt.Errorf("%w %s, cannot %s it", ErrWrongState, st, c.kind)
		return false
	case start:
		u.failures = nil
		u.switchState(StateStarting, nil)
	case stop:
		u.stop(in, StateStopped)
	case restart:
		u.stop(in, StateStarting)
	}
	c.reply <- nil
	return true
}
