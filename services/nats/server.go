package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// readyPoll is how often Run checks whether the server came up, and
// whether it reported a fatal error instead.
const readyPoll = 50 * time.Millisecond

// server is one started instance of the nats service.
type server struct {
	cfg  Config
	env  service.Env
	opts *natsserver.Options
}

// Run starts the NATS server and serves until ctx is done, then shuts the
// server down. It calls up once the client listener accepts connections
// and JetStream is enabled; /readyz answers 200 from then on. In a
// cluster, readiness does not wait for the other servers: JetStream's
// meta group forms when a quorum of them is up, and clients retry until
// then.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) error {
	logger := s.env.Logger
	if logger == nil {
		logger = log.NewNopLogger()
	}
	// Each start gets its own copy: nats-server keeps the options it was
	// given and fills in defaults.
	opts := s.opts.Clone()
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	slog := newServerLogger(logger)
	ns.SetLoggerV2(slog, opts.Debug, false, false)

	reg := service.NewRegistry()
	registerMetrics(reg, ns)
	var stopping sync.Once
	var shuttingDown = make(chan struct{})
	ready := func() bool {
		select {
		case <-shuttingDown:
			return false
		default:
		}
		return ns.Running() && ns.JetStreamEnabled() && slog.err() == nil
	}
	debug, err := transport.Listen(log.With(logger, "listener", "debug"), s.cfg.base.DebugAddr,
		transport.DebugHandler(reg, ready, s.cfg.base.Pprof), time.Second)
	if err != nil {
		return err
	}

	ns.Start()
	for !ns.ReadyForConnections(readyPoll) {
		if err := slog.err(); err != nil {
			ns.Shutdown()
			_ = debug.Close()
			return err
		}
		if ctx.Err() != nil {
			ns.Shutdown()
			_ = debug.Close()
			return nil
		}
	}
	if err := slog.err(); err != nil {
		ns.Shutdown()
		_ = debug.Close()
		return err
	}
	release := s.env.NATS.Set(ns)
	shutdown := func() {
		stopping.Do(func() {
			close(shuttingDown)
			// In-process connections move to other servers from here on.
			release()
			// Shutdown waits for the server's goroutines; it runs apart so
			// that the group's other interrupts are not held up.
			go ns.Shutdown()
		})
	}

	var g run.Group
	debug.AddTo(&g)
	// The server: it ends when shut down; on its own, that is an error.
	g.Add(func() error {
		ns.WaitForShutdown()
		select {
		case <-shuttingDown:
			return nil
		default:
			if err := slog.err(); err != nil {
				return err
			}
			return errors.New("nats server stopped on its own")
		}
	}, func(error) {
		shutdown()
	})
	// The context actor: the caller's cancellation stops the group.
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-ctx.Done()
		return nil
	}, func(error) {
		cancel()
	})

	addr := ns.Addr().String()
	kv := []any{"msg", "nats server ready", "addr", addr, "store_dir", opts.StoreDir, "server_name", opts.ServerName}
	if ca := ns.ClusterAddr(); ca != nil {
		kv = append(kv, "cluster_addr", ca.String(), "cluster", opts.Cluster.Name, "routes", len(opts.Routes))
	}
	level.Info(logger).Log(kv...)
	up(service.Addrs{HTTP: addr, Debug: debug.Addr(), Ready: ready})
	return g.Run()
}

// registerMetrics exposes the server's own counts on the debug listener.
func registerMetrics(reg prometheus.Registerer, ns *natsserver.Server) {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ocis_nats_server_clients", Help: "Client connections to this NATS server.",
	}, func() float64 { return float64(ns.NumClients()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ocis_nats_server_routes", Help: "Route connections from this NATS server to others of its cluster.",
	}, func() float64 { return float64(ns.NumRoutes()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ocis_nats_server_jetstream_current", Help: "Whether this server's JetStream is current with its cluster's meta group (1) or not (0).",
	}, func() float64 {
		if ns.JetStreamEnabled() && ns.JetStreamIsCurrent() {
			return 1
		}
		return 0
	})
}
