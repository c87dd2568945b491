package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/services"
)

// TestConfigurationDocIsCurrent fails when docs/configuration.md is not
// what the flag definitions make: a flag added, renamed or given another
// default must come with the regenerated doc.
func TestConfigurationDocIsCurrent(t *testing.T) {
	want := configDoc(services.Catalogue())
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is stale: run `go generate ./cmd/ocis` (or `make docs`) and commit it")
	}
	// Every setting is in it, with its env var.
	for _, env := range knownKeys(services.Catalogue()) {
		if !strings.Contains(want, "`"+env+"`") {
			t.Errorf("docs/configuration.md lacks %s", env)
		}
	}
	// Nothing of the machine it was generated on.
	if home, err := os.UserHomeDir(); err == nil && strings.Contains(want, home+"/") {
		t.Errorf("docs/configuration.md names this machine's home %s", home)
	}
}
