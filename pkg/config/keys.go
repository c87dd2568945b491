package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// CheckKeys makes Load report the OCIS_ keys that no setting has: in the
// config file as an error (a typo there would silently keep the default),
// in the environment as a warning (Warnings), since the environment is
// shared with everything else the operator runs. known are the keys of
// every other command, which a shared config file may hold too; the set's
// own keys are always known.
func (s *Set) CheckKeys(known []string) {
	s.known = map[string]bool{}
	for _, k := range known {
		s.known[k] = true
	}
}

// Warnings are what Load found worth telling but not worth refusing: the
// unknown OCIS_ variables of the environment.
func (s *Set) Warnings() []string { return s.warnings }

// EnvNames lists the env var of every flag of the set, sorted.
func (s *Set) EnvNames() []string {
	out := make([]string, 0, len(s.entries))
	for _, e := range s.sorted() {
		out = append(out, e.env)
	}
	sort.Strings(out)
	return out
}

func (s *Set) isKnown(key string) bool {
	if s.known[key] {
		return true
	}
	for _, e := range s.entries {
		if e.env == key {
			return true
		}
	}
	return false
}

func (s *Set) candidates() []string {
	out := s.EnvNames()
	for k := range s.known {
		out = append(out, k)
	}
	return out
}

func (s *Set) checkEnv() {
	if s.known == nil {
		return
	}
	s.warnings = nil
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, EnvPrefix+"_") && !s.isKnown(key) {
			s.warnings = append(s.warnings, unknownEnv(key, Suggest(key, s.candidates())))
		}
	}
	sort.Strings(s.warnings)
}

func (s *Set) checkFile(path string, values map[string]string) error {
	if s.known == nil {
		return nil
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, key := range keys {
		if strings.HasPrefix(key, EnvPrefix+"_") && !s.isKnown(key) {
			errs = append(errs, &UnknownKeyError{Key: key, File: path, Suggestion: Suggest(key, s.candidates())})
		}
	}
	return errors.Join(errs...)
}

// Setting is one flag of a set as loaded: its names, its value and where
// the value came from.
type Setting struct {
	Flag    string // full flag name, without dashes: "storage.quota"
	Env     string
	Value   string // the value in effect, as the flag prints it
	Default string
	Usage   string
	Source  string // "flag", "env", a config file's path, or "default"
}

// Settings lists the flags whose full name starts with prefix (all of
// them for ""), sorted by name.
func (s *Set) Settings(prefix string) []Setting {
	var out []Setting
	for _, e := range s.sorted() {
		if !strings.HasPrefix(e.name, prefix) {
			continue
		}
		src := e.from
		if src == "" {
			src = "default"
		}
		out = append(out, Setting{Flag: e.name, Env: e.env, Value: e.target.String(), Default: e.def, Usage: e.usage, Source: src})
	}
	return out
}

// CopyFlags gives s every value that from took from the command line, so
// that a set loaded again (to read a changed config file) keeps what the
// operator typed: flags still win.
func (s *Set) CopyFlags(from *Set) {
	for name, e := range from.entries {
		if e.from != "flag" {
			continue
		}
		if mine, ok := s.entries[name]; ok {
			mine.raw, mine.from = e.raw, "flag"
		}
	}
}

// FlagError is a setting that was read fine but refused by the check of
// the config that owns it (a service's Validate): Flag is the flag's name
// as that config registers it, unprefixed ("quota").
type FlagError struct {
	Flag string
	Err  error
}

func (e *FlagError) Error() string { return fmt.Sprintf("--%s: %v", e.Flag, e.Err) }

func (e *FlagError) Unwrap() error { return e.Err }

// Invalid reports that the value of flag (unprefixed) is refused, for a
// config's Validate; the set that loaded it turns it into an Error naming
// the env var, the value and its source (Set.Explain).
func Invalid(flag, format string, args ...any) error {
	return &FlagError{Flag: flag, Err: fmt.Errorf(format, args...)}
}

// Explain turns every FlagError in err (a joined error is walked) into an
// Error naming the flag as registered under prefix ("storage."), its env
// var, its value and where the value came from.
func (s *Set) Explain(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, s.Explain(prefix, e))
		}
		return errors.Join(out...)
	}
	var fe *FlagError
	if !errors.As(err, &fe) {
		return err
	}
	e, ok := s.entries[prefix+fe.Flag]
	if !ok {
		return err
	}
	from, raw := e.from, e.raw
	if from == "" {
		from, raw = "default", e.target.String()
	}
	if IsSecret(e.name) {
		raw = Redact(raw)
	}
	return &Error{Flag: e.name, Env: e.env, Value: raw, From: from, Err: fe.Err}
}

// IsSecret reports whether a flag holds a secret, by its name: passwords,
// secrets, tokens and hashes are never printed or logged.
func IsSecret(flag string) bool {
	name := strings.ToLower(flag)
	for _, word := range []string{"password", "secret", "token", "hash"} {
		if strings.Contains(name, word) && !strings.Contains(name, "ttl") {
			return true
		}
	}
	return false
}

// Redact stands for a secret's value in messages and logs: whether it is
// set and how long it is, never what it is.
func Redact(v string) string {
	if v == "" {
		return ""
	}
	return fmt.Sprintf("<redacted, %d bytes>", len(v))
}
