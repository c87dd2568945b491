package main

import (
	"io"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/dirlock"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// knownKeys are the env vars of every setting any command reads: the
// config file is shared by all of them, so a key is unknown only when no
// command has it. `ocis server` has every service's and the runtime's;
// init adds its own.
func knownKeys(cat service.Catalogue) []string {
	return familyKeys(newFamily(cat, io.Discard))
}

// familyKeys are knownKeys read from a family already built, which has
// them all.
func familyKeys(f *family) []string {
	return append(f.set.EnvNames(), config.EnvName("init", "admin-password"), config.EnvName("init", "force"))
}

// warnUnknown logs the environment's OCIS_ variables that no setting has
// (config.Set.CheckKeys): a warning, since the environment is shared with
// everything else the operator runs.
func warnUnknown(logger log.Logger, set *config.Set) {
	for _, w := range set.Warnings() {
		level.Warn(logger).Log("msg", w)
	}
}

// logSettings logs a service's effective settings once per start, each
// as its flag name (without the service's prefix) and value; secrets
// (passwords, secrets, tokens, hashes) only say whether they are set.
func logSettings(logger log.Logger, settings []config.Setting, prefix string) {
	keyvals := []any{"msg", "settings"}
	for _, s := range settings {
		v := s.Value
		if config.IsSecret(s.Flag) {
			v = config.Redact(v)
		}
		keyvals = append(keyvals, strings.TrimPrefix(s.Flag, prefix), v)
	}
	level.Info(logger).Log(keyvals...)
}

// serviceSettings are the settings of service name in set: its own flags,
// prefixed "name." under ocis server, or carrying its env scope when it
// runs alone (the shared flags are left out either way).
func serviceSettings(set *config.Set, name, flagPrefix string) []config.Setting {
	envPrefix := config.EnvName(name, "")
	var out []config.Setting
	for _, s := range set.Settings(flagPrefix) {
		if flagPrefix == "" && !strings.HasPrefix(s.Env, envPrefix) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// lockData locks the data a process is about to use (pkg/dirlock), so a
// second process on it exits at once naming the first one's pid instead
// of crash-looping on the stores the first one holds.
//
// The scope: `ocis server` locks the base data path and the data dir of
// every service it runs; `ocis <service> server` locks only its own
// service's data dir. Services run alone may thus share one base data
// path (users and storage side by side, each its own process, as
// docs/runtime.md describes), while ocis server excludes both another
// ocis server on the same base path and a service run alone on a data
// dir it uses itself.
func lockData(holder, base string, shared *service.Shared, cfgs map[string]service.Config, names []string) (dirlock.Set, error) {
	var dirs []string
	if base != "" {
		dirs = append(dirs, base)
	}
	for _, name := range names {
		b := cfgs[name].Base()
		if b.KeepsData() {
			dirs = append(dirs, b.DataPath(shared, name))
		}
	}
	return dirlock.AcquireAll(holder, dirs...)
}
