package control

import "context"

// Config is the runtime's settings as they may change while it runs: the
// config file is read again for a restart of one service, and by a
// reload for all of them. Flags and the process's environment still win
// over the file, as at start.
type Config interface {
	// Refresh reads the settings of service name again, so that the
	// restart that follows builds it from the current config file. An
	// invalid setting refuses the restart and leaves the service alone.
	Refresh(name string) error
	// Reload reads every setting again and restarts exactly the running
	// services whose settings changed.
	Reload(ctx context.Context) (ReloadReport, error)
}

// ReloadReport says what a reload did.
type ReloadReport struct {
	// Restarted are the running services whose settings changed; they
	// were restarted with the new ones.
	Restarted []string `json:"restarted"`
	// Updated changed but were not running (killed or failed): they get
	// the new settings at their next start.
	Updated []string `json:"updated"`
	// Unchanged are the services whose settings are the same.
	Unchanged []string `json:"unchanged"`
	// NeedsFullRestart are the env vars of process-wide settings that
	// changed (the control address, the node name, the log level, …):
	// they take effect only when ocis server itself is restarted.
	NeedsFullRestart []string `json:"needs_full_restart"`
	// Errors are the restarts that failed or did not end running, by
	// service.
	Errors map[string]string `json:"errors,omitempty"`
}
