package users

import (
	"errors"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/config"
)

// TestValidateNamesTheFlag: Validate refuses what Build would build only
// to fail at run time, each refusal naming its flag for the command to
// explain, before anything starts.
func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(*Config)
		wantFlag string // "" means valid
		wantText string
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "weak admin password", change: func(c *Config) { c.AdminPassword = "password" }, wantFlag: "admin-password", wantText: "weak password"},
		{name: "admin password as its name", change: func(c *Config) { c.AdminPassword = "admin" }, wantFlag: "admin-password"},
		{name: "hash that is none", change: func(c *Config) { c.AdminPasswordHash = "not-a-hash" }, wantFlag: "admin-password-hash", wantText: "bcrypt"},
		{name: "password wins over a bad hash", change: func(c *Config) { c.AdminPassword = adminPassword; c.AdminPasswordHash = "x" }},
		{name: "cost too low", change: func(c *Config) { c.BcryptCost = 3 }, wantFlag: "bcrypt-cost", wantText: "4 to 31"},
		{name: "both listeners on one address", change: func(c *Config) { c.Base().DebugAddr = c.Base().HTTPAddr }, wantFlag: "debug-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, env := testRunConfig(t.TempDir(), "")
			cfg.Base().HTTPAddr, cfg.Base().DebugAddr = "127.0.0.1:9140", "127.0.0.1:9145"
			tc.change(cfg)
			err := cfg.Validate(env)
			if tc.wantFlag == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *config.FlagError
			if !errors.As(err, &fe) || fe.Flag != tc.wantFlag || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Validate = %v; want a refusal of --%s mentioning %q", err, tc.wantFlag, tc.wantText)
			}
		})
	}
}
