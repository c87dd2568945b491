package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

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
		{"unknown command", []string{"nosuch"}, exitUsage, "", `unknown command "nosuch"; commands: server, init, list, kill, run, restart, `},
		{"unknown command names the services", []string{"nosuch"}, exitUsage, "", `version; services: proxy, users, storage`},
		{"help lists status and logs", []string{"-h"}, exitOK, "one line; exit 0 only when every service", ""},
		{"logs without a service", []string{"logs"}, exitUsage, "", "logs takes one service name, got 0 arguments"},
		{"status takes no arguments", []string{"status", "x"}, exitUsage, "", `status takes no arguments, got "x"`},
		{"kill without a service", []string{"kill"}, exitUsage, "", "kill takes one service name, got 0 arguments"},
		{"list takes no arguments", []string{"list", "x"}, exitUsage, "", `list takes no arguments, got "x"`},
		{"unknown service verb", []string{"users", "bogus"}, exitUsage, "", `unknown command "bogus" for service users; use server, health or reset-password`},
		{"reset-password takes no arguments", []string{"users", "reset-password", "x"}, exitUsage, "", `reset-password takes no arguments, got "x"`},
		{"unknown flag", []string{"version", "--bogus"}, exitUsage, "", "Run 'ocis <command> -h' for usage."},
		{"service help", []string{"users", "server", "-h"}, exitOK, "OCIS_USERS_HTTP_ADDR", ""},
		{"server help", []string{"server", "-h"}, exitOK, "OCIS_STORAGE_QUOTA", ""},
		{"help is -h", []string{"help"}, exitOK, "Services: proxy, users, storage", ""},
		{"help of a command", []string{"help", "list"}, exitOK, "ocis list", ""},
		{"help of a service command", []string{"help", "users", "server"}, exitOK, "OCIS_USERS_HTTP_ADDR", ""},
		{"a service's usage names all its commands", []string{"users", "-h"}, exitOK, "ocis users server|health|reset-password", ""},
		{"version takes no arguments", []string{"version", "x"}, exitUsage, "", `version takes no arguments, got "x"`},
		{"a flag before the command", []string{"--json", "list"}, exitUsage, "", "Flags go after the command they belong to"},
		{"completion knows every command", []string{"completion", "bash"}, exitOK, "dashboard", ""},
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

// TestRegister checks which commands a command line gets built: the one
// it names, or all of them.
func TestRegister(t *testing.T) {
	names := func(a *app) []string {
		var out []string
		for _, cs := range [][]*ffcli.Command{a.verbs, a.services, a.hidden} {
			for _, c := range cs {
				out = append(out, c.Name)
			}
		}
		return out
	}
	whole := newApp(services.Catalogue(), io.Discard, io.Discard)
	whole.register(nil)
	all := names(whole)
	if len(all) < 15 {
		t.Fatalf("the whole tree has %d commands: %v", len(all), all)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"a verb", []string{"server", "--log-level", "debug"}, []string{"server"}},
		{"a service", []string{"users", "reset-password"}, []string{"users"}},
		{"a hidden command", []string{"config-doc"}, []string{"config-doc"}},
		{"no command", nil, all},
		{"a flag first", []string{"-h"}, all},
		{"an unknown command", []string{"nosuch"}, all},
		{"completion", []string{"completion", "bash"}, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(services.Catalogue(), io.Discard, io.Discard)
			a.register(tt.args)
			if got := names(a); !slices.Equal(got, tt.want) {
				t.Errorf("built %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	statuses := []supervisor.Status{
		{Name: "proxy", State: supervisor.StateRunning, Health: "ready", Node: "vm", Addr: "127.0.0.1:9200", Since: now.Add(-3 * time.Second), Version: "v1.2.0"},
		{Name: "users", State: supervisor.StateRunning, Health: "unready", Node: "vm", Addr: "127.0.0.1:9140", Since: now.Add(-2 * time.Hour), Version: "v1.2.0",
			Restarts: 1, LastError: "listen: address already in use", LastErrorAt: now.Add(-2*time.Hour - 5*time.Second)},
		{Name: "storage", State: supervisor.StateFailed, Node: "vm", Restarts: 10, Since: now.Add(-90 * time.Second), Version: "v1.2.0",
			LastError: "11 failures within 1m0s: listen: address already in use\ngoroutine 1 [running]", LastErrorAt: now.Add(-90 * time.Second)},
		{Name: "activity", State: "excluded", Node: "vm", Version: "v1.2.0"},
		{Name: "nats", State: supervisor.StateBackoff, Node: "n2", Addr: "10.0.0.2:9233", Restarts: 2, Since: now.Add(-time.Second),
			LastError: "from the registry, without its age"},
	}
	var got bytes.Buffer
	if err := printTable(&got, statuses, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"SERVICE   STATE     HEALTH   NODE  ADDRESS         RESTARTS  UPTIME  VERSION  LAST ERROR\n" +
		"proxy     running   ready    vm    127.0.0.1:9200  0         3s      v1.2.0   -\n" +
		"users     running   unready  vm    127.0.0.1:9140  1         2h00m   v1.2.0   (recovered) 2h00m ago: listen: address already in use\n" +
		"storage   failed    -        vm    -               10        -       v1.2.0   1m30s ago: 11 failures within 1m0s: listen: address already in use\n" +
		"activity  excluded  -        vm    -               0         -       v1.2.0   -\n" +
		"nats      backoff   -        n2    10.0.0.2:9233   2         -       -        from the registry, without its age\n"
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
		"SERVICE   STATE    HEALTH  NODE  ADDRESS         RESTARTS  LAG  UPTIME  VERSION  LAST ERROR\n" +
		"proxy     running  -       vm    127.0.0.1:9200  0         -    3s      -        -\n" +
		"activity  stopped  -       vm    -               0         42   -       -        -\n"
	if got.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", got.String(), want)
	}
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	running := supervisor.Status{Name: "proxy", State: supervisor.StateRunning, Node: "vm"}
	tests := []struct {
		name     string
		statuses []supervisor.Status
		want     string
		wantOK   bool
	}{
		{"all running", []supervisor.Status{running}, "ok: 1 of 1 services running on node vm", true},
		{"excluded aside", []supervisor.Status{running, {Name: "activity", State: "excluded", Node: "vm"}},
			"ok: 1 of 1 services running on node vm (excluded: activity)", true},
		{"one down", []supervisor.Status{running,
			{Name: "users", State: supervisor.StateBackoff, Node: "vm", LastError: "bind: in use", LastErrorAt: now.Add(-2 * time.Second)},
			{Name: "storage", State: supervisor.StateStopped, Node: "vm"}},
			"not ok: 1 of 3 services running on node vm; users backoff (2s ago: bind: in use); storage stopped", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := summary(tt.statuses, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("summary = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
