package benchkit

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRunAndWrkFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		wantSet string
	}{
		{name: "defaults"},
		{name: "set flags are reported", args: []string{"-short", "-d", "5s"}, wantSet: "d"},
		{name: "positional argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "no time at all", args: []string{"-timeout", "0s"}, wantErr: "-timeout 0s"},
		{name: "more threads than connections", args: []string{"-c", "2", "-t", "3"}, wantErr: "-t 3: want 1 to -c (2)"},
		{name: "part of a second", args: []string{"-d", "1500ms"}, wantErr: "-d 1.5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rf RunFlags
			var wf WrkFlags
			fs := flag.NewFlagSet("probe", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			rf.Register(fs, "smoke run")
			wf.Register(fs, 32)
			set, err := rf.Parse(fs, tc.args)
			if err == nil {
				err = wf.Validate()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case tc.wantSet != "" && !set[tc.wantSet]:
				t.Errorf("set %v lacks %s", set, tc.wantSet)
			}
			if tc.wantErr == "" && tc.wantSet == "" && (rf.Timeout != 10*time.Minute || wf.Conns != 32 || wf.Threads != 2 || wf.Duration != 10*time.Second) {
				t.Errorf("defaults %+v %+v", rf, wf)
			}
		})
	}
}
