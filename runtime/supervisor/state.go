package supervisor

import "time"

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

// Status is one service as the control API reports it.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Node      string    `json:"node"`
	Addr      string    `json:"addr"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
}
