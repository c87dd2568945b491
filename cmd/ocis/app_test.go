package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services"
)

// TestCommandTree runs the commands that need no runtime in process, for
// their exit codes and output; the tests beside it drive the real binary.
func TestCommandTree(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"version"}, exitOK, "ocis dev (commit unknown, go", ""},
		{"help", []string{"-h"}, exitOK, "ocis <command> [flags]", ""},
		{"no command is help", nil, exitOK, "Services: proxy, users, storage", ""},
		{"help lists the commands", []string{"-h"}, exitOK, "restart", ""},
		{"unknown command", []string{"nosuch"}, exitUsage, "", `unknown command "nosuch"; commands: server, init, list, kill, run, restart, version; services: proxy, users, storage`},
		{"kill without a service", []string{"kill"}, exitUsage, "", "kill takes one service name, got 0 arguments"},
		{"list takes no arguments", []string{"list", "x"}, exitUsage, "", `list takes no arguments, got "x"`},
		{"unknown service verb", []string{"users", "bogus"}, exitUsage, "", `unknown command "bogus" for service users; use server or health`},
		{"unknown flag", []string{"version", "--bogus"}, exitUsage, "", "Run 'ocis <command> -h' for usage."},
		{"service help", []string{"users", "server", "-h"}, exitOK, "OCIS_USERS_HTTP_ADDR", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := ocis(tt.args, services.Catalogue(), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	statuses := []supervisor.Status{
		{Name: "proxy", State: supervisor.StateRunning, Node: "vm", Addr: "127.0.0.1:9200", Since: now.Add(-3 * time.Second)},
		{Name: "storage", State: supervisor.StateFailed, Node: "vm", Restarts: 10, Since: now.Add(-90 * time.Second),
			LastError: "11 failures within 1m0s: listen: address already in use\ngoroutine 1 [running]"},
	}
	var got bytes.Buffer
	if err := printTable(&got, statuses, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"SERVICE  STATE    NODE  ADDRESS         RESTARTS  SINCE      LAST ERROR\n" +
		"proxy    running  vm    127.0.0.1:9200  0         3s ago     -\n" +
		"storage  failed   vm    -               10        1m30s ago  11 failures within 1m0s: listen: address already in use\n"
	if got.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", got.String(), want)
	}
}

func TestPrintTableWithLag(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lag := uint64(42)
	statuses := []supervisor.Status{
		{Name: "proxy", State: supervisor.StateRunning, Node: "vm", Addr: "127.0.0.1:9200", Since: now.Add(-3 * time.Second)},
		{Name: "activity", State: supervisor.StateStopped, Node: "vm", Since: now.Add(-5 * time.Second), Lag: &lag},
	}
	var got bytes.Buffer
	if err := printTable(&got, statuses, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"SERVICE   STATE    NODE  ADDRESS         RESTARTS  LAG  SINCE   LAST ERROR\n" +
		"proxy     running  vm    127.0.0.1:9200  0         -    3s ago  -\n" +
		"activity  stopped  vm    -               0         42   5s ago  -\n"
	if got.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", got.String(), want)
	}
}
