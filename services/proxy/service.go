// Package proxy is the single entry point: it routes each request by path
// prefix to a running instance of the owning service, found in the
// registry, and balances across instances.
//
// The proxy has no API of its own, so it has no endpoints or client: its
// clients are the other services' clients pointed at the proxy's address.
package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/pkg/registry"
)

// Balancer picks instances for a service in round-robin order, passing
// over for a while those that refused a connection (eject.go).
type Balancer struct {
	reg      registry.Registry
	counters sync.Map // service name → *atomic.Uint64
	ejector  *ejector
	// placed is the service whose instances each hold some users' data
	// (storage), and placer says which instance holds whose.
	placed string
	placer *placement.Placer
}

// NewBalancer returns a balancer over the instances of reg, ejecting
// with the default EjectOptions.
func NewBalancer(reg registry.Registry) *Balancer {
	return &Balancer{reg: reg, ejector: newEjector(EjectOptions{})}
}

// Ejecting replaces the balancer's ejection settings (its logger, its
// metrics, its holds).
func (b *Balancer) Ejecting(opts EjectOptions) *Balancer {
	b.ejector = newEjector(opts)
	return b
}

// eject passes in over for a while: its dial failed with err, so nothing
// of the request reached it. Both forwarding paths call it before they try
// the next instance; ctx is the request's.
func (b *Balancer) eject(ctx context.Context, in registry.Instance, err error) {
	if b != nil {
		b.ejector.refused(ctx, in, err)
	}
}

// Route returns the service that owns path and its instances, starting with
// the one whose turn it is; the rest follow as fallbacks for retries, and
// the instances ejected lately come last.
func (b *Balancer) Route(path string) (service string, order []registry.Instance, owned bool) {
	tbl := b.reg.Table()
	service, owned = tbl.Owner(path)
	if !owned {
		return "", nil, false
	}
	instances := tbl.Instances(service)
	if len(instances) < 2 && b.ejector.size.Load() > 0 {
		// Nothing to arrange, but an instance gone from the registry
		// must not be held when it comes back.
		b.ejector.forgetGone(service, instances)
	}
	if len(instances) == 0 {
		return service, nil, true
	}
	if len(instances) == 1 {
		// The table's slices are never modified: one instance needs
		// no copy and no turn.
		return service, instances[:1:1], true
	}
	c, ok := b.counters.Load(service)
	if !ok {
		// LoadOrStore alone would allocate a counter on every request.
		c, _ = b.counters.LoadOrStore(service, new(atomic.Uint64))
	}
	// The modulo is taken before the conversion: an int of the counter
	// turns negative once it passes the int range (after 2^31 requests
	// where int has 32 bits), and a negative start would panic.
	start := int((c.(*atomic.Uint64).Add(1) - 1) % uint64(len(instances)))
	order = make([]registry.Instance, 0, len(instances))
	if b.ejector.size.Load() > 0 {
		return service, b.ejector.arrange(service, instances, start, order), true
	}
	order = append(order, instances[start:]...)
	order = append(order, instances[:start]...)
	return service, order, true
}

// Placed makes every request of a user for service go only to the
// instance placer names for that user (docs/distribution.md, "Storage
// placement").
func (b *Balancer) Placed(service string, placer *placement.Placer) *Balancer {
	b.placed, b.placer = service, placer
	return b
}

// Place narrows order, the instances Route chose for a request of method
// to service, to the ones that may serve the caller authenticated in ctx.
// Only the placed service is narrowed; an error is 503 unavailable, never
// a reason to send the request elsewhere.
func (b *Balancer) Place(ctx context.Context, service, method string, order []registry.Instance) ([]registry.Instance, error) {
	if b.placer == nil || service != b.placed {
		return order, nil
	}
	claims, err := auth.FromContext(ctx)
	if err != nil {
		// A public route: it reads no user's files.
		return order, nil
	}
	return b.placer.Place(ctx, placement.Request{User: claims.UserID(), Username: claims.Username(), Write: writes(method)}, order)
}

// writes reports whether a request of method may create a user's first
// file, and so place the user. A read or a delete of a user placed
// nowhere finds nothing wherever it goes, which is the truth.
func writes(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete:
		return false
	}
	return true
}

// Public reports whether a request of method for path, which service owns,
// takes no token: whether it matches a route the service declared public
// in the registry. Only the owner of a path can make it public.
func (b *Balancer) Public(service, method, path string) bool {
	return b.reg.Table().Public(service, method, path)
}
