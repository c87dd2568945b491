package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// liveConfig is the settings ocis server runs its services with. Each
// start of a service builds it from the settings in effect for it; a
// restart (Refresh) and a reload read every source again first: flags
// as the command line gave them, the process's environment, and the
// config file as it is now. It implements control.Config.
type liveConfig struct {
	cat     service.Catalogue
	enabled []string
	// first is what the process started with: process-wide settings
	// (the runtime's, the node's, logging) keep its values until ocis
	// server itself restarts.
	first *family
	// env is the environment a service is built in, with the shared
	// settings in effect for it.
	env    func(name string, shared *service.Shared) service.Env
	logger log.Logger
	// sup is set once the supervisor exists; a reload restarts through
	// it.
	sup *supervisor.Supervisor

	mu      sync.Mutex
	current map[string]applied
}

// applied is one service's settings in effect.
type applied struct {
	cfg      service.Config
	shared   *service.Shared
	settings []config.Setting // the service's own, "name." flags
}

var _ control.Config = (*liveConfig)(nil)

func newLiveConfig(cat service.Catalogue, f *family, enabled []string, logger log.Logger, env func(string, *service.Shared) service.Env) *liveConfig {
	l := &liveConfig{cat: cat, enabled: enabled, first: f, env: env, logger: logger, current: map[string]applied{}}
	for _, name := range enabled {
		l.current[name] = appliedOf(f, name)
	}
	return l
}

func appliedOf(f *family, name string) applied {
	return applied{cfg: f.configs[name], shared: f.shared, settings: f.set.Settings(name + ".")}
}

// build is the Build of service name's unit: the settings in effect now,
// logged once per start (secrets redacted).
func (l *liveConfig) build(name string) (service.Runner, error) {
	l.mu.Lock()
	a := l.current[name]
	l.mu.Unlock()
	env := l.env(name, a.shared)
	logSettings(env.Logger, a.settings, name+".")
	return a.cfg.Build(env)
}

// reread loads every setting again into a fresh family: the command
// line's flags copied over, the environment and the config file read
// anew, unknown keys refused as at start.
func (l *liveConfig) reread() (*family, error) {
	next := newFamily(l.cat, io.Discard)
	next.set.CopyFlags(l.first.set)
	next.set.CheckKeys(knownKeys(l.cat))
	if err := next.set.Load(func() (string, error) { return next.shared.ConfigPath(), nil }); err != nil {
		return nil, err
	}
	// The process has one list of revoked tokens, whatever the settings.
	next.shared.Revocations = l.first.shared.Revocations
	return next, nil
}

// validate checks next's settings of the named services and the shared
// ones, as at start.
func (l *liveConfig) validate(next *family, names []string) error {
	errs := []error{next.set.Explain("", errors.Join(next.shared.Validate(), next.settings.validate()))}
	for _, name := range names {
		errs = append(errs, next.set.Explain(name+".", next.configs[name].Validate(l.env(name, next.shared))))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: the config file is not applied: %v", apierr.ErrInvalidArgument, err)
	}
	return nil
}

// Refresh implements control.Config: the restart of name that follows
// builds it from the current config file. A name this node does not run
// is left to the supervisor's answer.
func (l *liveConfig) Refresh(name string) error {
	if !slices.Contains(l.enabled, name) {
		return nil
	}
	next, err := l.reread()
	if err != nil {
		return fmt.Errorf("%w: the config file is not applied: %v", apierr.ErrInvalidArgument, err)
	}
	if err := l.validate(next, []string{name}); err != nil {
		return err
	}
	l.mu.Lock()
	l.current[name] = appliedOf(next, name)
	l.mu.Unlock()
	return nil
}

// Reload implements control.Config: every service whose settings changed
// is restarted if it runs (or is on its way up), and gets them at its next
// start if it was killed or failed; the others are left alone.
func (l *liveConfig) Reload(ctx context.Context) (control.ReloadReport, error) {
	next, err := l.reread()
	if err != nil {
		return control.ReloadReport{}, fmt.Errorf("%w: the config file is not applied: %v", apierr.ErrInvalidArgument, err)
	}
	if err := l.validate(next, l.enabled); err != nil {
		return control.ReloadReport{}, err
	}
	report := control.ReloadReport{Restarted: []string{}, Updated: []string{}, Unchanged: []string{}, NeedsFullRestart: l.processWide(next)}
	var changed []string
	l.mu.Lock()
	for _, name := range l.enabled {
		a := appliedOf(next, name)
		if sameSettings(l.current[name], a) {
			report.Unchanged = append(report.Unchanged, name)
			continue
		}
		l.current[name] = a
		changed = append(changed, name)
	}
	l.mu.Unlock()
	for _, name := range changed {
		st, err := l.sup.Status(name)
		if err == nil && (st.State == supervisor.StateStopped || st.State == supervisor.StateFailed) {
			report.Updated = append(report.Updated, name)
			continue
		}
		st, err = l.sup.Restart(ctx, name)
		report.Restarted = append(report.Restarted, name)
		switch {
		case err != nil:
			addReloadError(&report, name, err.Error())
		case st.State != supervisor.StateRunning:
			addReloadError(&report, name, fmt.Sprintf("%s after the restart: %s", st.State, st.LastError))
		}
	}
	level.Info(l.logger).Log("msg", "settings reloaded", "restarted", strings.Join(report.Restarted, ","),
		"updated", strings.Join(report.Updated, ","), "needs_full_restart", strings.Join(report.NeedsFullRestart, ","))
	return report, nil
}

// sameSettings reports whether a service would be built alike from a and
// b: its own settings and the shared secret its tokens are checked with.
func sameSettings(a, b applied) bool {
	if a.shared.JWTSecret != b.shared.JWTSecret || len(a.settings) != len(b.settings) {
		return false
	}
	for i := range a.settings {
		if a.settings[i].Flag != b.settings[i].Flag || a.settings[i].Value != b.settings[i].Value {
			return false
		}
	}
	return true
}

// processWide lists the env vars of the settings outside every service's
// that changed since start: they wait for a restart of ocis server. The
// JWT secret is not among them: a reload restarts every service with the
// new one.
func (l *liveConfig) processWide(next *family) []string {
	was := map[string]string{}
	for _, s := range l.first.set.Settings("") {
		was[s.Flag] = s.Value
	}
	out := []string{}
	for _, s := range next.set.Settings("") {
		if s.Flag == "jwt-secret" || l.ownedByService(s.Flag) {
			continue
		}
		if was[s.Flag] != s.Value {
			out = append(out, s.Env)
		}
	}
	return out
}

func (l *liveConfig) ownedByService(flag string) bool {
	for _, d := range l.cat {
		if strings.HasPrefix(flag, d.Name+".") {
			return true
		}
	}
	return false
}

// addReloadError records that the restart of name went wrong.
func addReloadError(r *control.ReloadReport, name, msg string) {
	if r.Errors == nil {
		r.Errors = map[string]string{}
	}
	r.Errors[name] = msg
}
