// Package config layers the settings of every command: flags over the
// environment over the config file over defaults. Flags are parsed by ff
// (through ffcli); this package decides where each value comes from and
// reports a bad one naming its flag, its env var and the value.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/peterbourgon/ff/v3"
)

// EnvPrefix starts every environment variable of ocis.
const EnvPrefix = "OCIS"

// Set is a flag set whose values are applied only by Load, so that all three
// sources go through one path and one error format.
type Set struct {
	fs      *flag.FlagSet
	entries map[string]*entry // by full flag name
	// known, once CheckKeys was called, are the OCIS_ keys of other
	// commands that a config file or the environment may hold; nil means
	// no check.
	known    map[string]bool
	warnings []string
}

type entry struct {
	name   string
	env    string
	usage  string
	def    string
	target flag.Value
	raw    string
	from   string // "flag", "env" or a config file path, once set
}

// NewSet returns a set whose flag set is named name and does not exit on
// error; usage text goes to output.
func NewSet(name string, output io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	return &Set{fs: fs, entries: map[string]*entry{}}
}

// FlagSet is the flag set to hand to ffcli.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Register adds the flags that register defines, named with flagPrefix on the
// command line ("users." under ocis server, "" standalone) and with
// OCIS_<SCOPE>_<NAME> in the environment either way, so an env var means the
// same thing whether the service runs alone or in the family.
func (s *Set) Register(flagPrefix, envScope string, register func(fs *flag.FlagSet)) {
	tmp := flag.NewFlagSet("", flag.ContinueOnError)
	register(tmp)
	tmp.VisitAll(func(f *flag.Flag) {
		e := &entry{name: flagPrefix + f.Name, env: EnvName(envScope, f.Name), usage: f.Usage, def: f.DefValue, target: f.Value}
		s.entries[e.name] = e
		s.fs.Var(deferred{e}, e.name, fmt.Sprintf("%s (env %s)", f.Usage, e.env))
		// flag.Var takes the default from Value.String at registration.
		s.fs.Lookup(e.name).DefValue = f.DefValue
	})
}

// EnvName is the environment variable of a flag in a scope: EnvName("users",
// "http-addr") is OCIS_USERS_HTTP_ADDR, EnvName("", "log-level") is
// OCIS_LOG_LEVEL.
func EnvName(scope, flagName string) string {
	name := flagName
	if scope != "" {
		name = scope + "_" + flagName
	}
	// Every command line builds a few hundred of these: a byte loop, not
	// a strings.Replacer built per call.
	b := make([]byte, 0, len(EnvPrefix)+1+len(name))
	b = append(b, EnvPrefix+"_"...)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '-' || c == '.':
			b = append(b, '_')
		case 'a' <= c && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Load applies the values: those given as flags, then the environment for the
// rest. Then it asks configFile for the path of the config file, which may
// depend on values just applied, and fills what is still unset from it. A
// missing file is no error; a missing path means no file.
func (s *Set) Load(configFile func() (string, error)) error {
	var errs []error
	s.checkEnv()
	for _, e := range s.sorted() {
		if e.from == "" {
			if v, ok := os.LookupEnv(e.env); ok && v != "" {
				e.raw, e.from = v, "env"
			}
		}
		if e.from != "" {
			errs = append(errs, e.apply())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	path, err := configFile()
	if err != nil || path == "" {
		return err
	}
	values, err := ReadFile(path)
	if err != nil {
		return err
	}
	if err := s.checkFile(path, values); err != nil {
		return err
	}
	for _, e := range s.sorted() {
		if v, ok := values[e.env]; ok && e.from == "" {
			e.raw, e.from = v, path
			errs = append(errs, e.apply())
		}
	}
	return errors.Join(errs...)
}

// Source says where a flag's value came from: "flag", "env", a config file's
// path, or "default".
func (s *Set) Source(name string) string {
	if e, ok := s.entries[name]; ok && e.from != "" {
		return e.from
	}
	return "default"
}

func (s *Set) sorted() []*entry {
	out := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Error is an invalid setting; the message names the flag, the env var, the
// value and where it came from.
type Error struct {
	Flag, Env, Value, From string
	Err                    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid value %q for flag --%s (env %s, set by %s): %v", e.Value, e.Flag, e.Env, e.From, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func (e *entry) apply() error {
	if err := e.target.Set(e.raw); err != nil {
		return &Error{Flag: e.name, Env: e.env, Value: e.raw, From: e.from, Err: err}
	}
	return nil
}

// deferred stands in the flag set for the real value: the command line only
// records the text, and Load applies it with the other sources.
type deferred struct{ e *entry }

func (d deferred) String() string {
	if d.e == nil {
		return ""
	}
	return d.e.target.String()
}

func (d deferred) Set(v string) error {
	d.e.raw, d.e.from = v, "flag"
	return nil
}

func (d deferred) IsBoolFlag() bool {
	b, ok := d.e.target.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// ReadFile reads a config file of KEY=VALUE lines, the keys being the env var
// names (a config file is a persisted environment).
func ReadFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	// ff's parser scans lines with a bufio.Scanner and ignores its error, so
	// a line over the scanner's limit would end the file there without a
	// word; refuse such a line instead of dropping the settings after it.
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(line) >= bufio.MaxScanTokenSize {
			return nil, fmt.Errorf("read config file %s: line %d is over %d bytes", path, i+1, bufio.MaxScanTokenSize-1)
		}
	}
	values := map[string]string{}
	err = ff.EnvParser(bytes.NewReader(data), func(k, v string) error {
		values[k] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	return values, nil
}
