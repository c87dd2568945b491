package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// closeTimeout bounds the deletion of this node's key at shutdown: the
// other nodes then drop it at once, and at worst it expires within a TTL.
const closeTimeout = 2 * time.Second

// node is this runtime among the others: its record in the registry, its
// view of the other nodes, its control commands over NATS, and the
// revocations it shares. None of it holds back the local services: they
// start and serve while NATS is still unreachable, and go on serving when
// it is lost.
type node struct {
	name     string
	settings *runtimeSettings
	cat      service.Catalogue
	sup      *supervisor.Supervisor
	watcher  *registry.Watcher
	shared   *service.Shared
	token    string
	logger   log.Logger
	reg      prometheus.Registerer
	runtime  registry.RuntimeInfo

	// nc is nil on a node on its own: no nats service here and no
	// OCIS_NATS_URL.
	nc *nats.Conn
	// lagPausedUntil (unix nanos) is when Lag asks NATS again after a
	// question went unanswered.
	lagPausedUntil atomic.Int64

	mu      sync.Mutex
	closing bool
	ann     *registry.Announcer
	svc     micro.Service
}

// newNode connects to NATS as client says (nil: a node on its own, with no
// nats service here and no OCIS_NATS_URL, routing to its own services
// only). The connection is in-process when this node runs the nats
// service; it is made in the background and never given up.
func newNode(n *node, client *natsconn.Options) (*node, error) {
	if client == nil {
		level.Info(n.logger).Log("msg", "no nats service on this node and no OCIS_NATS_URL: this node runs on its own")
		return n, nil
	}
	opts := *client
	opts.Name = "runtime " + n.name
	opts.Logger = n.logger
	opts.Registerer = n.reg
	nc, err := natsconn.Connect(opts)
	if err != nil {
		return nil, err
	}
	n.nc = nc
	return n, nil
}

// record is this node's current record: every service's state and the
// address other nodes dial.
func (n *node) record() registry.NodeRecord {
	statuses := n.sup.Statuses()
	rec := registry.NodeRecord{Node: n.name, Runtime: n.runtime, Services: make([]registry.ServiceRecord, 0, len(statuses))}
	for _, st := range statuses {
		d, _ := n.cat.Lookup(st.Name)
		sr := registry.ServiceRecord{
			Name: st.Name, State: string(st.State), Routes: d.Routes, Public: d.Public,
			Restarts: st.Restarts, Since: st.Since, LastError: st.LastError, Version: version,
		}
		if st.Addr != "" {
			sr.Addr = n.settings.advertise(st.Addr)
		}
		rec.Services = append(rec.Services, sr)
	}
	return rec
}

// Nodes implements control.Peers: the registry's nodes, this one with its
// current record (the registry holds it as last written).
func (n *node) Nodes() []registry.Node {
	nodes := n.watcher.Nodes()
	self := registry.Node{NodeRecord: n.record(), Seen: time.Now()}
	if i := slices.IndexFunc(nodes, func(x registry.Node) bool { return x.Node == n.name }); i >= 0 {
		nodes[i] = self
	} else {
		nodes = append(nodes, self)
		slices.SortFunc(nodes, func(a, b registry.Node) int {
			switch {
			case a.Node < b.Node:
				return -1
			case a.Node > b.Node:
				return 1
			}
			return 0
		})
	}
	return nodes
}

// List implements control.Peers.
func (n *node) List(ctx context.Context, name string) ([]supervisor.Status, error) {
	return control.NewNATSClient(n.nc, n.token).List(ctx, name)
}

// Command implements control.Peers.
func (n *node) Command(ctx context.Context, name, verb, svc string) (supervisor.Status, error) {
	return control.NewNATSClient(n.nc, n.token).Command(ctx, name, verb, svc)
}

// peers is the node as the control API's Peers, nil on a node on its own.
func (n *node) peers() control.Peers {
	if n.nc == nil {
		return nil
	}
	return n
}

// addActor adds the node's actor to g: it opens the registry bucket,
// starts watching it, claims the node's name, publishes the node's record
// on every change of the supervisor, serves the control commands over NATS
// and shares revocations. It ends the group only for a node name another
// live runtime holds; trouble with NATS is logged and waited out. Its
// interrupt deletes the node's key before anything else stops, so that the
// other nodes stop routing here at once.
//
// background lasts until the whole group has returned: the watcher keeps
// the remote instances routable while the local proxy drains.
func (n *node) addActor(g *run.Group, background context.Context, ctl control.Service, started <-chan struct{}) {
	if n.nc == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		// Nothing here gates a local service, and all of it is JetStream
		// work (on a fresh node, streams to create) that competes for the
		// CPUs with the start of the family: it begins once every local
		// service's first start has ended (running, or failing with its
		// reason), or startBound later: serve closes started then.
		select {
		case <-started:
		case <-ctx.Done():
		}
		bucket, err := registry.OpenBucket(ctx, n.nc, registry.BucketConfig{TTL: n.settings.RegistryTTL, Logger: n.logger})
		if err != nil {
			if ctx.Err() == nil {
				level.Error(n.logger).Log("msg", "registry unusable, this node routes to its own services only", "err", err)
				<-ctx.Done()
			}
			return nil
		}
		go func() { _ = n.watcher.Run(background, bucket) }()
		ann, err := registry.Announce(ctx, bucket, n.record(), registry.AnnounceOptions{Logger: n.logger, Registerer: n.reg})
		if errors.Is(err, registry.ErrNodeTaken) {
			return err
		}
		if err != nil {
			if ctx.Err() == nil {
				level.Error(n.logger).Log("msg", "node not announced, other nodes will not see it", "err", err)
				<-ctx.Done()
			}
			return nil
		}
		svc, err := control.ServeNATS(n.nc, n.name, version, n.token, ctl, n.logger)
		if err != nil {
			level.Error(n.logger).Log("msg", "control commands over NATS not served", "err", err)
		}
		n.mu.Lock()
		closing := n.closing
		n.ann, n.svc = ann, svc
		n.mu.Unlock()
		if closing {
			n.leave()
			return nil
		}
		go n.publish(background, ann)
		<-ctx.Done()
		return nil
	}, func(error) {
		n.mu.Lock()
		n.closing = true
		n.mu.Unlock()
		n.leave()
		cancel()
	})
	// Revocations need no registry, and do not wait for the start as the
	// registry does: the local services serve from their first moment,
	// and a token revoked on another node while this one was down must be
	// refused here as soon as NATS can say so, not once the slowest
	// service has started (up to startBound).
	go func() {
		err := auth.ShareRevocations(background, n.nc, n.shared.Revocations, auth.ShareOptions{
			Logger: n.logger,
			Merged: func() {
				if err := n.shared.Revocations.Save(); err != nil {
					level.Warn(n.logger).Log("msg", "save revocations from another node", "err", err)
				}
			},
		})
		if err != nil && background.Err() == nil {
			level.Error(n.logger).Log("msg", "revocations are not shared with other nodes", "err", err)
		}
	}()
}

// publish writes the node's record at once after every change of the
// supervisor; the announcer writes in the background and never blocks.
func (n *node) publish(ctx context.Context, ann *registry.Announcer) {
	for {
		changed := n.sup.Changed()
		ann.Publish(n.record())
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// leave stops answering commands over NATS and deletes the node's key,
// within closeTimeout; it is safe to call more than once.
func (n *node) leave() {
	n.mu.Lock()
	ann, svc := n.ann, n.svc
	n.ann, n.svc = nil, nil
	n.mu.Unlock()
	if svc != nil {
		_ = svc.Stop()
	}
	if ann != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := ann.Close(ctx); err != nil {
			level.Warn(n.logger).Log("msg", "remove node from the registry; it expires within its TTL", "err", err)
		}
	}
}

// close ends the connection once the group has returned.
func (n *node) close() {
	if n.nc != nil {
		n.nc.Close()
	}
}
