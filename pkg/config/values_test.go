package config_test

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/config"
)

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func TestAddrVar(t *testing.T) {
	const def = "127.0.0.1:9140"
	for _, tc := range []struct {
		value   string
		wantErr string
	}{
		{value: "127.0.0.1:9200"},
		{value: ":9200"},
		{value: "localhost:0"},
		{value: "[::1]:65535"},
		{value: "0.0.0.0:80"},
		{value: "localhost", wantErr: "want host:port"},
		{value: "", wantErr: "want host:port"},
		{value: "127.0.0.1:http", wantErr: "not a number"},
		{value: "127.0.0.1:65536", wantErr: "not a number"},
		{value: "127.0.0.1:-1", wantErr: "not a number"},
		{value: "127.0.0.1:", wantErr: "not a number"},
		{value: "::1:80", wantErr: "want host:port"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			var got string
			fs := newFlagSet()
			config.AddrVar(fs, &got, "http-addr", def, "address")
			if got != def {
				t.Fatalf("before parsing: %q, want the default %q", got, def)
			}
			err := fs.Parse([]string{"--http-addr=" + tc.value})
			checkSet(t, err, tc.wantErr)
			want := tc.value
			if tc.wantErr != "" {
				want = def
			}
			if got != want {
				t.Errorf("value = %q, want %q", got, want)
			}
		})
	}
}

func TestEnumVar(t *testing.T) {
	for _, tc := range []struct {
		value   string
		wantErr string
	}{
		{value: "json"},
		{value: "logfmt"},
		{value: "JSON", wantErr: "want one of logfmt, json"},
		{value: "", wantErr: "want one of logfmt, json"},
		{value: "text", wantErr: "want one of logfmt, json"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			var got string
			fs := newFlagSet()
			config.EnumVar(fs, &got, "log-format", "logfmt", "line format", "logfmt", "json")
			if usage := fs.Lookup("log-format").Usage; !strings.Contains(usage, "logfmt|json") {
				t.Errorf("usage %q does not list the choices", usage)
			}
			err := fs.Parse([]string{"--log-format=" + tc.value})
			checkSet(t, err, tc.wantErr)
			want := tc.value
			if tc.wantErr != "" {
				want = "logfmt"
			}
			if got != want {
				t.Errorf("value = %q, want %q", got, want)
			}
		})
	}
}

func TestDurationVar(t *testing.T) {
	const def = 30 * time.Second
	for _, tc := range []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{value: "10s", want: 10 * time.Second},
		{value: "1m30s", want: 90 * time.Second},
		{value: "1ns", want: time.Nanosecond},
		{value: "0s", wantErr: "positive"},
		{value: "0", wantErr: "positive"},
		{value: "-1s", wantErr: "positive"},
		{value: "10", wantErr: "want a duration"},
		{value: "soon", wantErr: "want a duration"},
		{value: "", wantErr: "want a duration"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			var got time.Duration
			fs := newFlagSet()
			config.DurationVar(fs, &got, "shutdown-timeout", def, "drain time")
			if d := fs.Lookup("shutdown-timeout").DefValue; d != "30s" {
				t.Errorf("DefValue = %q, want 30s", d)
			}
			err := fs.Parse([]string{"--shutdown-timeout=" + tc.value})
			checkSet(t, err, tc.wantErr)
			want := tc.want
			if tc.wantErr != "" {
				want = def
			}
			if got != want {
				t.Errorf("value = %s, want %s", got, want)
			}
		})
	}
}

func TestListVar(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{value: "users,storage", want: []string{"users", "storage"}},
		{value: " users , ,storage,", want: []string{"users", "storage"}},
		{value: "", want: nil},
		{value: ",", want: nil},
	} {
		t.Run(tc.value, func(t *testing.T) {
			got := []string{"previous"}
			fs := newFlagSet()
			config.ListVar(fs, &got, "run-services", "services to run")
			if err := fs.Parse([]string{"--run-services=" + tc.value}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("value = %q, want %q", got, tc.want)
			}
		})
	}
}

func checkSet(t *testing.T, err error, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("err = %v, want one containing %q", err, wantErr)
	}
}
