package main

import (
	"slices"

	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// newLogRing is the ring that keeps the recent lines of every service of
// the catalogue, and of the runtime itself, for `ocis logs`. Services
// this node does not run keep none, but asking for them is no error.
func newLogRing(cat service.Catalogue) *logging.Ring {
	return logging.NewRing(logging.DefaultRingLines, logging.DefaultRingBytes, append(cat.Names(), "runtime")...)
}

// controlOptions are what this node's control API knows beside its
// supervisor: the version its services run, the services of the
// catalogue it does not run (listed as excluded), and how to set a
// password through the users service it runs.
func controlOptions(cat service.Catalogue, enabled []string, sup *supervisor.Supervisor, shared *service.Shared, node string) []control.Option {
	var excluded []string
	for _, name := range cat.Names() {
		if !slices.Contains(enabled, name) {
			excluded = append(excluded, name)
		}
	}
	return []control.Option{
		control.WithVersion(version),
		control.WithExcluded(excluded),
		control.WithPasswords(passwordSetter(sup, shared, node)),
	}
}
