package control

import (
	"context"
	"fmt"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

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

// WithConfig makes a restart on this node read the service's settings
// again, and enables Reload; without it a restart reuses the settings the
// service was built with.
func WithConfig(cfg Config) Option { return func(s *service) { s.config = cfg } }

func (s service) Reload(ctx context.Context, _ endpoint.Empty) (ReloadReport, error) {
	if s.config == nil {
		return ReloadReport{}, fmt.Errorf("%w: this runtime cannot reload its settings", apierr.ErrUnavailable)
	}
	return s.config.Reload(ctx)
}

// refresh reads service name's settings again before a local restart.
func (s service) refresh(name string) error {
	if s.config == nil {
		return nil
	}
	return s.config.Refresh(name)
}
