// Package runtime runs the family: the supervisor that keeps each service
// up ("let it crash"), the order services start and stop in, the control API
// through which operators list, kill, run and restart them, and the CLI.
package runtime

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

// States lists every state, for metrics that need all of them.
var States = []State{StateStopped, StateStarting, StateRunning, StateStopping, StateBackoff, StateFailed}

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
