// Package services lists the family: every service the ocis binary embeds.
package services

import (
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services/activity"
	"github.com/ocis-runtime/ocis/services/nats"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// Catalogue returns the descriptors of every embedded service, in the order
// the CLI lists them.
func Catalogue() service.Catalogue {
	return natsStopsLast(frontedByProxy(service.Catalogue{
		proxy.Descriptor(),
		users.Descriptor(),
		storage.Descriptor(),
		activity.Descriptor(),
		// nats is in the default set: a single node runs its own server
		// (in-process, ready in milliseconds); a node that excludes it
		// joins the others' through OCIS_NATS_URL.
		nats.Descriptor(),
	}))
}

// natsStopsLast declares that every other service fronts nats: they use it
// while they serve (the proxy looks up storage placements, users and
// storage publish events, activity consumes them), so at shutdown nats
// stops only after all of them have drained.
func natsStopsLast(cat service.Catalogue) service.Catalogue {
	for i, d := range cat {
		if d.Name != nats.Name {
			cat[i].Fronts = append(cat[i].Fronts, nats.Name)
		}
	}
	return cat
}

// frontedByProxy declares that the proxy fronts every service that owns
// routes: it forwards their requests, so at shutdown it stops accepting
// before any of them begins to drain (docs/runtime.md, stop order).
func frontedByProxy(cat service.Catalogue) service.Catalogue {
	for i, d := range cat {
		if d.Name != proxy.Name {
			continue
		}
		for _, other := range cat {
			if len(other.Routes) > 0 {
				d.Fronts = append(d.Fronts, other.Name)
			}
		}
		cat[i] = d
	}
	return cat
}
