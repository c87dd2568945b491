package config_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/config"
)

// usersConfig stands for a service's config struct that owns its flags.
type usersConfig struct {
	HTTPAddr        string
	LogLevel        string
	ShutdownTimeout time.Duration
	Pprof           bool
}

func (c *usersConfig) RegisterFlags(fs *flag.FlagSet) {
	config.AddrVar(fs, &c.HTTPAddr, "http-addr", "127.0.0.1:9140", "address of the HTTP API")
	config.EnumVar(fs, &c.LogLevel, "log-level", "info", "lowest level logged", "debug", "info", "warn", "error")
	config.DurationVar(fs, &c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "drain time")
	fs.BoolVar(&c.Pprof, "debug.pprof", false, "serve pprof")
}

const (
	envHTTPAddr = "OCIS_USERS_HTTP_ADDR"
	envLogLevel = "OCIS_USERS_LOG_LEVEL"
	envShutdown = "OCIS_USERS_SHUTDOWN_TIMEOUT"
	envPprof    = "OCIS_USERS_DEBUG_PPROF"
)

// clearEnv makes the test independent of the environment it runs in;
// t.Setenv restores the previous values afterwards.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range []string{envHTTPAddr, envLogLevel, envShutdown, envPprof} {
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ocis.env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileAt(path string) func() (string, error) {
	return func() (string, error) { return path, nil }
}

// load registers a usersConfig under flagPrefix, parses args and loads.
func load(t *testing.T, flagPrefix string, args []string, configFile func() (string, error)) (*usersConfig, *config.Set, error) {
	t.Helper()
	s := config.NewSet("users", io.Discard)
	var c usersConfig
	s.Register(flagPrefix, "users", c.RegisterFlags)
	if err := s.FlagSet().Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &c, s, s.Load(configFile)
}

func TestLoadPrecedence(t *testing.T) {
	const (
		def     = "127.0.0.1:9140"
		fromFlg = "127.0.0.1:1001"
		fromEnv = "127.0.0.1:1002"
		fromFil = "127.0.0.1:1003"
	)
	for _, tc := range []struct {
		name       string
		flag       string
		env        string
		file       string
		want       string
		wantSource string // "file" stands for the config file's path
	}{
		{name: "default", want: def, wantSource: "default"},
		{name: "file over default", file: fromFil, want: fromFil, wantSource: "file"},
		{name: "env over file", env: fromEnv, file: fromFil, want: fromEnv, wantSource: "env"},
		{name: "env over default", env: fromEnv, want: fromEnv, wantSource: "env"},
		{name: "flag over env and file", flag: fromFlg, env: fromEnv, file: fromFil, want: fromFlg, wantSource: "flag"},
		{name: "flag over file", flag: fromFlg, file: fromFil, want: fromFlg, wantSource: "flag"},
		{name: "flag over default", flag: fromFlg, want: fromFlg, wantSource: "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			if tc.env != "" {
				t.Setenv(envHTTPAddr, tc.env)
			}
			content := "# written by ocis init\nOCIS_SOMETHING_ELSE=ignored\n"
			if tc.file != "" {
				content += envHTTPAddr + "=" + tc.file + "\n"
			}
			path := writeFile(t, content)
			var args []string
			if tc.flag != "" {
				args = []string{"--http-addr", tc.flag}
			}

			c, s, err := load(t, "", args, fileAt(path))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.HTTPAddr != tc.want {
				t.Errorf("http-addr = %q, want %q", c.HTTPAddr, tc.want)
			}
			wantSource := tc.wantSource
			if wantSource == "file" {
				wantSource = path
			}
			if got := s.Source("http-addr"); got != wantSource {
				t.Errorf("Source = %q, want %q", got, wantSource)
			}
			// The other flags were set by nobody and keep their defaults.
			if c.LogLevel != "info" || c.ShutdownTimeout != 30*time.Second || c.Pprof {
				t.Errorf("untouched flags = (%q, %s, %t), want defaults", c.LogLevel, c.ShutdownTimeout, c.Pprof)
			}
		})
	}
}

func TestLoadEachFlagFromItsOwnSource(t *testing.T) {
	clearEnv(t)
	t.Setenv(envLogLevel, "debug")
	path := writeFile(t, envShutdown+"=5s\n"+envPprof+"=true\n"+envLogLevel+"=error\n")
	c, s, err := load(t, "users.", []string{"--users.http-addr=127.0.0.1:0"}, fileAt(path))
	if err != nil {
		t.Fatal(err)
	}
	want := usersConfig{HTTPAddr: "127.0.0.1:0", LogLevel: "debug", ShutdownTimeout: 5 * time.Second, Pprof: true}
	if *c != want {
		t.Errorf("config = %+v, want %+v", *c, want)
	}
	for name, wantSource := range map[string]string{
		"users.http-addr":        "flag",
		"users.log-level":        "env",
		"users.shutdown-timeout": path,
		"users.debug.pprof":      path,
		"no-such-flag":           "default",
	} {
		if got := s.Source(name); got != wantSource {
			t.Errorf("Source(%q) = %q, want %q", name, got, wantSource)
		}
	}
}

func TestLoadEmptyEnvIsUnset(t *testing.T) {
	clearEnv(t)
	t.Setenv(envHTTPAddr, "")
	path := writeFile(t, envHTTPAddr+"=127.0.0.1:1003\n")
	c, _, err := load(t, "", nil, fileAt(path))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:1003" {
		t.Errorf("http-addr = %q, want the file's value", c.HTTPAddr)
	}
}

func TestLoadBoolFlagWithoutValue(t *testing.T) {
	clearEnv(t)
	c, _, err := load(t, "users.", []string{"--users.debug.pprof"}, fileAt(""))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Pprof {
		t.Error("--users.debug.pprof without a value left pprof off")
	}
}

func TestLoadConfigFile(t *testing.T) {
	errLookup := errors.New("no home directory")
	for _, tc := range []struct {
		name       string
		configFile func() (string, error)
		wantErr    error
		wantText   string
		wantAddr   string
	}{
		{name: "no path means no file", configFile: fileAt(""), wantAddr: "127.0.0.1:9140"},
		{name: "missing file is no error", configFile: fileAt(filepath.Join(t.TempDir(), "absent.env")), wantAddr: "127.0.0.1:9140"},
		{name: "quoted value", configFile: fileAt(writeFile(t, envHTTPAddr+`="127.0.0.1:1004"`)), wantAddr: "127.0.0.1:1004"},
		{name: "path lookup fails", configFile: func() (string, error) { return "", errLookup }, wantErr: errLookup},
		{name: "line without =", configFile: fileAt(writeFile(t, "OCIS_USERS_HTTP_ADDR\n")), wantText: "read config file"},
		{name: "directory instead of a file", configFile: fileAt(t.TempDir()), wantText: "is a directory"},
		{
			// The settings after an over-long line must not vanish unseen.
			name:       "line over the scanner's limit",
			configFile: fileAt(writeFile(t, "OCIS_CERT="+strings.Repeat("x", 70_000)+"\n"+envHTTPAddr+"=127.0.0.1:1004\n")),
			wantText:   "line 1 is over",
		},
		{
			name:       "long line under the limit",
			configFile: fileAt(writeFile(t, "OCIS_CERT="+strings.Repeat("x", 60_000)+"\n"+envHTTPAddr+"=127.0.0.1:1004\n")),
			wantAddr:   "127.0.0.1:1004",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			c, _, err := load(t, "", nil, tc.configFile)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.wantText != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("err = %v, want one mentioning %q", err, tc.wantText)
				}
			default:
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if c.HTTPAddr != tc.wantAddr {
					t.Errorf("http-addr = %q, want %q", c.HTTPAddr, tc.wantAddr)
				}
			}
		})
	}
}

func TestLoadInvalidValue(t *testing.T) {
	const bad = "localhost-without-port"
	for _, tc := range []struct {
		name       string
		source     string
		flagPrefix string
		wantFlag   string
	}{
		{name: "from a flag", source: "flag", wantFlag: "http-addr"},
		{name: "from a namespaced flag", source: "flag", flagPrefix: "users.", wantFlag: "users.http-addr"},
		{name: "from the environment", source: "env", wantFlag: "http-addr"},
		{name: "from the config file", source: "file", wantFlag: "http-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			path := writeFile(t, "")
			var args []string
			switch tc.source {
			case "flag":
				args = []string{"--" + tc.wantFlag + "=" + bad}
			case "env":
				t.Setenv(envHTTPAddr, bad)
			case "file":
				path = writeFile(t, envHTTPAddr+"="+bad+"\n")
			}
			c, _, err := load(t, tc.flagPrefix, args, fileAt(path))

			var got *config.Error
			if !errors.As(err, &got) {
				t.Fatalf("err = %v (%T), want a *config.Error", err, err)
			}
			wantFrom := tc.source
			if wantFrom == "file" {
				wantFrom = path
			}
			if got.Flag != tc.wantFlag || got.Env != envHTTPAddr || got.Value != bad || got.From != wantFrom {
				t.Errorf("error = {Flag %q, Env %q, Value %q, From %q}, want {%q, %q, %q, %q}",
					got.Flag, got.Env, got.Value, got.From, tc.wantFlag, envHTTPAddr, bad, wantFrom)
			}
			for _, want := range []string{"--" + tc.wantFlag, envHTTPAddr, `"` + bad + `"`, wantFrom} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not name %q", err, want)
				}
			}
			if got.Unwrap() == nil {
				t.Error("Unwrap() = nil, want the value's own error")
			}
			if c.HTTPAddr != "127.0.0.1:9140" {
				t.Errorf("http-addr = %q after a bad value, want the default kept", c.HTTPAddr)
			}
		})
	}
}

func TestLoadReportsEveryInvalidValue(t *testing.T) {
	clearEnv(t)
	t.Setenv(envLogLevel, "loud")
	_, _, err := load(t, "", []string{"--shutdown-timeout=-1s"}, fileAt(""))
	if err == nil {
		t.Fatal("Load accepted two bad values")
	}
	for _, want := range []string{"--log-level", envLogLevel, `"loud"`, "--shutdown-timeout", envShutdown, `"-1s"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %q", err, want)
		}
	}
}

func TestRegisterUsage(t *testing.T) {
	var out bytes.Buffer
	s := config.NewSet("users", &out)
	var c usersConfig
	s.Register("users.", "users", c.RegisterFlags)
	fs := s.FlagSet()
	for _, tc := range []struct {
		flag        string
		wantDefault string
		wantEnv     string
	}{
		{flag: "users.http-addr", wantDefault: "127.0.0.1:9140", wantEnv: envHTTPAddr},
		{flag: "users.log-level", wantDefault: "info", wantEnv: envLogLevel},
		{flag: "users.shutdown-timeout", wantDefault: "30s", wantEnv: envShutdown},
		{flag: "users.debug.pprof", wantDefault: "false", wantEnv: envPprof},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			f := fs.Lookup(tc.flag)
			if f == nil {
				t.Fatalf("flag %q not defined", tc.flag)
			}
			if f.DefValue != tc.wantDefault {
				t.Errorf("DefValue = %q, want %q", f.DefValue, tc.wantDefault)
			}
			if want := "(env " + tc.wantEnv + ")"; !strings.Contains(f.Usage, want) {
				t.Errorf("usage %q does not name %q", f.Usage, want)
			}
		})
	}
	// Printing the defaults builds zero values of the flag types; it must
	// neither panic nor lose the env names.
	fs.PrintDefaults()
	if !strings.Contains(out.String(), envHTTPAddr) {
		t.Errorf("usage text lacks %s:\n%s", envHTTPAddr, out.String())
	}
	// An unknown flag is a parse error, not an exit.
	if err := fs.Parse([]string{"--users.no-such-flag"}); err == nil {
		t.Error("Parse accepted an unknown flag")
	}
}

func TestEnvName(t *testing.T) {
	for _, tc := range []struct {
		scope, flag string
		want        string
	}{
		{scope: "users", flag: "http-addr", want: "OCIS_USERS_HTTP_ADDR"},
		{scope: "storage", flag: "data-dir", want: "OCIS_STORAGE_DATA_DIR"},
		{scope: "users", flag: "debug.pprof", want: "OCIS_USERS_DEBUG_PPROF"},
		{scope: "", flag: "log-level", want: "OCIS_LOG_LEVEL"},
		{scope: "", flag: "jwt-secret", want: "OCIS_JWT_SECRET"},
		{scope: "Users", flag: "HTTP-Addr", want: "OCIS_USERS_HTTP_ADDR"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := config.EnvName(tc.scope, tc.flag); got != tc.want {
				t.Errorf("EnvName(%q, %q) = %q, want %q", tc.scope, tc.flag, got, tc.want)
			}
		})
	}
}
