package config_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/config"
)

func TestSuggest(t *testing.T) {
	known := []string{"OCIS_STORAGE_QUOTA", "OCIS_STORAGE_DATA_DIR", "OCIS_USERS_BCRYPT_COST", "OCIS_LOG_LEVEL"}
	tests := []struct{ key, want string }{
		{"OCIS_STORAGE_QOUTA", "OCIS_STORAGE_QUOTA"}, // swapped letters
		{"OCIS_STORAGE_QUOTAS", "OCIS_STORAGE_QUOTA"},
		{"OCIS_USER_BCRYPT_COST", "OCIS_USERS_BCRYPT_COST"},
		{"ocis_log_level", "OCIS_LOG_LEVEL"},
		{"OCIS_SOMETHING_ELSE_ENTIRELY", ""},
		{"OCIS_X", ""},
	}
	for _, tt := range tests {
		if got := config.Suggest(tt.key, known); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	clearEnv(t)
	t.Setenv("OCIS_USERS_HTTP_ADRR", "x")
	set := config.NewSet("users", io.Discard)
	var c usersConfig
	set.Register("", "users", c.RegisterFlags)
	set.CheckKeys([]string{"OCIS_JWT_SECRET"})
	path := writeFile(t, "OCIS_JWT_SECRET=s\nOCIS_USERS_SHUTDOWN_TIMOUT=5s\nOTHER_KEY=1\n")
	err := set.Load(fileAt(path))
	var uerr *config.UnknownKeyError
	if !errors.As(err, &uerr) || uerr.Key != "OCIS_USERS_SHUTDOWN_TIMOUT" || uerr.Suggestion != envShutdown {
		t.Fatalf("Load = %v; want the unknown key with a suggestion", err)
	}
	if !strings.Contains(err.Error(), "did you mean "+envShutdown) || !strings.Contains(err.Error(), path) {
		t.Errorf("message %q lacks the suggestion or the file", err)
	}
	w := set.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "OCIS_USERS_HTTP_ADRR") || !strings.Contains(w[0], "did you mean "+envHTTPAddr) {
		t.Errorf("warnings = %q; want one about the environment's typo", w)
	}
	if err := os.Unsetenv("OCIS_USERS_HTTP_ADRR"); err != nil {
		t.Fatal(err)
	}
}

func TestExplainNamesFlagEnvValueSource(t *testing.T) {
	clearEnv(t)
	t.Setenv(envShutdown, "5s")
	set := config.NewSet("server", io.Discard)
	var c usersConfig
	set.Register("users.", "users", c.RegisterFlags)
	if err := set.FlagSet().Parse([]string{"--users.http-addr", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Load(fileAt("")); err != nil {
		t.Fatal(err)
	}
	validate := errors.Join(
		config.Invalid("shutdown-timeout", "too short"),
		config.Invalid("http-addr", "port 1 is reserved"),
		config.Invalid("log-level", "not here"),
		errors.New("a plain error"),
	)
	err := set.Explain("users.", validate)
	msg := err.Error()
	for _, want := range []string{
		`invalid value "5s" for flag --users.shutdown-timeout (env OCIS_USERS_SHUTDOWN_TIMEOUT, set by env): too short`,
		`invalid value "127.0.0.1:1" for flag --users.http-addr (env OCIS_USERS_HTTP_ADDR, set by flag): port 1 is reserved`,
		`invalid value "info" for flag --users.log-level (env OCIS_USERS_LOG_LEVEL, set by default): not here`,
		"a plain error",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("explained %q lacks %q", msg, want)
		}
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Error("explained error is no *config.Error")
	}
}

func TestCopyFlagsKeepsTheCommandLine(t *testing.T) {
	clearEnv(t)
	first := config.NewSet("server", io.Discard)
	var a usersConfig
	first.Register("", "users", a.RegisterFlags)
	if err := first.FlagSet().Parse([]string{"--http-addr", "127.0.0.1:7"}); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, envHTTPAddr+"=127.0.0.1:8\n"+envShutdown+"=9s\n")
	if err := first.Load(fileAt(path)); err != nil {
		t.Fatal(err)
	}
	again := config.NewSet("server", io.Discard)
	var b usersConfig
	again.Register("", "users", b.RegisterFlags)
	again.CopyFlags(first)
	if err := again.Load(fileAt(path)); err != nil {
		t.Fatal(err)
	}
	if b.HTTPAddr != "127.0.0.1:7" || b.ShutdownTimeout.String() != "9s" {
		t.Errorf("reloaded %+v; want the flag's address and the file's timeout", b)
	}
	got := again.Settings("http")
	if len(got) != 1 || got[0].Source != "flag" || got[0].Env != envHTTPAddr {
		t.Errorf("Settings(http) = %+v", got)
	}
}
