package service

import (
	"strings"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
)

// Validate checks the shared settings without opening anything: a JWT
// secret too short to sign with is refused before any service starts.
// An empty secret is left to the services that need one (Keys), whose
// error says how to get one.
func (s *Shared) Validate() error {
	if s.JWTSecret == "" {
		return nil
	}
	if _, err := auth.NewKeys(s.JWTSecret); err != nil {
		return config.Invalid("jwt-secret", "%v; run `ocis init` for a fresh one", err)
	}
	return nil
}

// Validate checks the base settings that their flags cannot check alone:
// the durations are positive and the addresses well formed already, as
// their flags refuse anything else, but both listeners on one fixed
// address would fail on every start.
func (b *Base) Validate() error {
	if b.DebugAddr == b.HTTPAddr && !strings.HasSuffix(b.DebugAddr, ":0") {
		return config.Invalid("debug-addr", "the same address as the service's primary listener")
	}
	return nil
}
