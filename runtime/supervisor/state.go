package supervisor

import (
	"fmt"
	"slices"
	"time"
)

// State is where a supervised service is in its life.
type State string

// The states of DESIGN.md.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateBackoff  State = "backoff"
	StateFailed   State = "failed"
)

// States lists every state, for metrics that need all of them. It returns a
// fresh slice, so no caller can change another's.
func States() []State {
	return []State{StateStopped, StateStarting, StateRunning, StateStopping, StateBackoff, StateFailed}
}

// transitions are the moves a unit may make, from the state on the left.
// Every state change goes through switchState, which checks it here.
func transitions() map[State][]State {
	return map[State][]State{
		// An operator's run or restart, or the supervisor's first start.
		StateStopped: {StateStarting},
		// Ready; told to stop; killed or shut down while waiting for a
		// dependency; Run or Build failed before the service was ready.
		StateStarting: {StateRunning, StateStopping, StateStopped, StateBackoff, StateFailed},
		// Told to stop; Run returned nil by itself; Run failed or panicked.
		StateRunning: {StateStopping, StateStopped, StateBackoff, StateFailed},
		// Drained after a kill or shutdown, a restart, or a failed start;
		// failed also when the stop was abandoned.
		StateStopping: {StateStopped, StateStarting, StateBackoff, StateFailed},
		// The wait is over or a restart cut it short; killed or shut down.
		StateBackoff: {StateStarting, StateStopped},
		// Only an operator's run or restart revives a failed service.
		StateFailed: {StateStarting},
	}
}

// canSwitch reports whether the table allows the move from → to.
func canSwitch(from, to State) bool {
	return slices.Contains(transitions()[from], to)
}

// errInvalidTransition is a move the table does not allow: a bug in the
// supervisor, never an operator's doing.
type errInvalidTransition struct{ from, to State }

func (e errInvalidTransition) Error() string {
	return fmt.Sprintf("supervisor: invalid state transition %s -> %s", e.from, e.to)
}

// Status is one service as the control API reports it.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Node      string    `json:"node"`
	Addr      string    `json:"addr"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
	// Lag is how many events the service's durable consumers have not
	// handled yet (pending plus awaiting an ack). The control API fills
	// it in for services that consume events (Descriptor.Consumers);
	// it is absent for the others, and when NATS did not answer.
	Lag *uint64 `json:"lag,omitempty"`
	// LastErrorAt is when LastError happened, absent when there was none:
	// a last error older than the current run's Since is one the service
	// has recovered from.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// DebugAddr is where the service's /healthz, /readyz and /metrics
	// answer, as last started.
	DebugAddr string `json:"debug_addr,omitempty"`
	// Health is what a running service's own /readyz answered while the
	// list was made (ready, unready, unreachable); absent when not asked.
	Health string `json:"health,omitempty"`
	// Version is the version of the binary the service runs in.
	Version string `json:"version,omitempty"`
}
