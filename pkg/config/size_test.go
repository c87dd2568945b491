package config_test

import (
	"flag"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/config"
)

func TestSizeVar(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"10MB", 10_000_000, false},
		{"10 mb", 10_000_000, false},
		{"1GiB", 1 << 30, false},
		{"1.5GB", 1_500_000_000, false},
		{"512KiB", 512 << 10, false},
		{"7B", 7, false},
		{"-5", 0, true},
		{"10XB", 0, true},
		{"MB", 0, true},
		{"", 0, true},
		{"99999999999TB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got int64
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			config.SizeVar(fs, &got, "quota", 0, "")
			err := fs.Lookup("quota").Value.Set(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Set(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1 << 30: "1GiB", 10_000_000: "10MB", 1500: "1500", 1001: "1001", 2048: "2KiB"} {
		if got := config.FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
		if back, err := config.ParseSize(config.FormatSize(in)); err != nil || back != in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", in, back, err)
		}
	}
}
