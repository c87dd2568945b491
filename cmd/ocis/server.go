package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/control"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
	natsservice "github.com/ocis-runtime/ocis/services/nats"
)

// natsName is the nats service's name: a node that runs it connects
// in-process.
const natsName = natsservice.Name

// family is the settings of `ocis server`: shared, runtime, and each
// service's under its own prefix.
type family struct {
	set      *config.Set
	shared   *service.Shared
	settings *runtimeSettings
	configs  map[string]service.Config
}

func newFamily(cat service.Catalogue, output io.Writer) *family {
	f := &family{
		set:      config.NewSet("server", output),
		shared:   service.NewShared(),
		settings: newSettings(),
		configs:  map[string]service.Config{},
	}
	f.set.Register("", "", f.shared.RegisterFlags)
	f.settings.registerServer(f.set)
	for _, d := range cat {
		cfg := d.NewConfig()
		f.configs[d.Name] = cfg
		f.set.Register(d.Name+".", d.Name, cfg.RegisterFlags)
	}
	return f
}

// registerServer adds `ocis server`.
func registerServer(a *app) {
	f := newFamily(a.cat, a.usage)
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "server",
		ShortUsage: "ocis server [flags]",
		ShortHelp:  "start the runtime and its services; blocks until SIGINT or SIGTERM",
		FlagSet:    f.set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("server", args); err != nil {
				return err
			}
			return serve(a.cat, f, a.stdout, a.stderr)
		},
	})
}

// serve is `ocis server`: it initialises a fresh data dir, resolves the
// selection and the dependency graph, and runs the top-level group (signals,
// control API, supervisor) until a signal.
func serve(cat service.Catalogue, f *family, stdout, stderr io.Writer) error {
	// Starting is a burst of allocation: the collector waits until a
	// second after the family is up (startgc.go).
	restoreGC := relaxGC(os.Getenv)
	defer restoreGC()
	// A key of the config file no command knows is a typo: refused.
	// The family's set has every setting of the service commands too.
	f.set.CheckKeys(familyKeys(f))
	err := f.set.Load(func() (string, error) {
		path := f.shared.ConfigPath()
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && f.shared.JWTSecret == "" {
			// A newcomer's first command must work: init as `ocis init` would.
			if err := initConfig(path, "", false, stdout); err != nil {
				return "", err
			}
		}
		return path, nil
	})
	if err != nil {
		return err
	}
	// Every line goes to stderr, to --log-file, and, per service, to the
	// ring `ocis logs` reads.
	ring := newLogRing(cat)
	logger, closeLog, err := logging.Open(stderr, logging.Options{Level: f.shared.LogLevel, Format: f.shared.LogFormat, File: f.shared.LogFile, Ring: ring})
	if err != nil {
		return err
	}
	defer closeLog()
	warnUnknown(log.With(logger, "service", "runtime"), f.set)
	if err := f.set.Explain("", errors.Join(f.shared.Validate(), f.settings.validate())); err != nil {
		return err
	}
	enabled, err := f.settings.Select.Resolve(cat)
	if err != nil {
		return err
	}
	if err := supervisor.CheckGraph(cat, enabled); err != nil {
		return err
	}
	if slices.Contains(enabled, natsName) {
		natsservice.Warm()
	}
	token, err := f.settings.resolveToken(f.shared, true)
	if err != nil {
		return err
	}

	nodeName := f.settings.Node
	rtLogger := log.With(logger, "service", "runtime")
	// One tracing for the process, flushed once every service stopped.
	tr, stopTracing, err := startTracing(f.shared, rtLogger, nodeName, stdout)
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := service.NewRegistry()
	// The registry is this process's instances (Memory) merged with the
	// other nodes' (Watcher, filled from NATS by the node actor); services
	// and the supervisor see only the merged one.
	local := registry.NewMemory()
	watcher := registry.NewWatcher(registry.WatcherOptions{Self: nodeName, Logger: rtLogger, Registerer: reg})
	instances := registry.NewCluster(local, watcher)
	// Every service's routes are declared, enabled here or not: a route
	// whose service is down (or runs on no node) is unavailable, not
	// unknown.
	for _, d := range cat {
		if len(d.Routes) > 0 {
			if err := instances.Declare(d.Name, d.Routes, d.Public); err != nil {
				return err
			}
		}
	}
	// The process's handle on its embedded NATS server: the nats service
	// sets it, the node's connection goes in-process through it.
	emb := natsconn.NewEmbedded()
	// How this process reaches NATS: in-process when the nats service
	// runs here, else through OCIS_NATS_URL; nil when neither.
	var natsClient *natsconn.Options
	if natsHere := slices.Contains(enabled, natsName); natsHere || len(f.settings.NATS.URLs) > 0 {
		o := f.settings.NATS
		if natsHere {
			o.Embedded = emb
		}
		natsClient = &o
	}
	// Closed once the family's first start has ended (or startBound has
	// passed): the services' own work that serves no request yet (their
	// JetStream setup) waits for it (service.AfterStart).
	familyStarted := make(chan struct{})
	envFor := func(name string, shared *service.Shared) service.Env {
		env := service.Env{Logger: log.With(logger, "service", name), Shared: shared, Node: nodeName, Registry: instances, NATS: emb, Tracing: tr,
			Started: familyStarted}
		if natsClient != nil {
			o := *natsClient
			env.NATSClient = &o
		}
		return env
	}
	// Every setting a service can check without opening anything is
	// checked now, so that a bad one stops `ocis server` before any
	// listener opens instead of crash-looping the service; each refusal
	// names the flag, its env var, the value and where it came from.
	var invalid []error
	for _, name := range enabled {
		invalid = append(invalid, f.set.Explain(name+".", f.configs[name].Validate(envFor(name, f.shared))))
	}
	if err := errors.Join(invalid...); err != nil {
		return err
	}
	// The data is this process's alone (lockData): a second ocis server
	// on it ends here, naming this one's pid.
	locks, err := lockData("ocis server", f.shared.BaseDataPath, f.shared, f.configs, enabled)
	if err != nil {
		return err
	}
	defer locks.Release()
	// Each start builds a service from the settings in effect for it,
	// which a restart and a reload read again from the config file.
	live := newLiveConfig(cat, f, enabled, rtLogger, envFor)
	units := make([]supervisor.Unit, 0, len(enabled))
	for _, name := range enabled {
		d, _ := cat.Lookup(name)
		units = append(units, supervisor.Unit{
			Name: name, DependsOn: d.DependsOn, Fronts: d.Fronts, Routes: d.Routes,
			StopTimeout: f.configs[name].Base().ShutdownTimeout,
			Build:       func() (service.Runner, error) { return live.build(name) },
		})
	}
	sup := supervisor.New(logger, f.settings.Policy, nodeName, reg, instances, units)
	live.sup = sup

	var g run.Group
	// Signals: SIGINT or SIGTERM ends the group; a second one exits at once.
	addSignalActor(&g, rtLogger)
	// systemd: READY=1 once every service runs, STOPPING=1 at once on a
	// stop, watchdog pings while the process lives.
	addNotifyActor(&g, rtLogger, sup)
	defer startWatchdog(rtLogger)()
	// Control API: its listener is opened first, so a taken runtime port
	// fails before any service starts.
	// Its handler needs the node, and the node the listener's address:
	// the handler is set below, before the group serves anything.
	// Followers of the logs end when it begins to shut down.
	var apiHandler http.Handler
	logsDone := make(chan struct{})
	api, err := transport.Listen(log.With(rtLogger, "listener", "control"), f.settings.Addr,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHandler.ServeHTTP(w, r) }), 5*time.Second,
		transport.OnShutdown(func() { close(logsDone) }))
	if err != nil {
		return err
	}
	// The services' start waits for nothing more: the rest of the
	// runtime's setup (its NATS connection, its control files, its
	// handler) serves none of them, and is done while they start. The
	// control API serves nothing before the group runs, and its /readyz
	// answers 200 only once every service runs, so no caller can see the
	// runtime half set up.
	level.Info(rtLogger).Log("msg", "runtime starting", "node", nodeName, "addr", f.settings.Addr, "services", fmt.Sprint(enabled))
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go func() {
		awaitStarted(background, sup.Started(), startBound)
		close(familyStarted)
		settle := time.NewTimer(collectAfter)
		defer settle.Stop()
		select {
		case <-settle.C:
		case <-background.Done():
		}
		restoreGC()
	}()
	supCtx, stopServices := context.WithCancel(context.Background())
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(supCtx) }()
	// The services' start takes this CPU at once; the runtime's own setup
	// below waits for one to be free. Without the yield, the start would
	// wait until this goroutine blocks, or for the other CPU.
	runtime.Gosched()
	// A setup step that fails from here on stops the services it let
	// start, each draining as at any stop, before the data is unlocked.
	abort := func(err error) error {
		_ = api.Close()
		stopServices()
		<-supDone
		return err
	}
	// The node's NATS connection and registry record serve none of the
	// services' starts: made once they are under way.
	n, err := newNode(&node{
		name: nodeName, settings: f.settings, cat: cat, sup: sup, watcher: watcher, shared: f.shared,
		token: token, logger: rtLogger, reg: reg,
		runtime: registry.RuntimeInfo{
			InstanceID: registry.NewInstanceID(), ControlAddr: f.settings.advertise(api.Addr()),
			Version: version, StartedAt: time.Now(),
		},
	}, natsClient)
	if err != nil {
		return abort(err)
	}
	// The background work of the node ends before its connection closes.
	defer func() {
		stopBackground()
		n.close()
	}()
	// The control API's address and token, where a CLI given only the
	// base data path finds them.
	unpublish, err := publishControl(f.shared, api.Addr(), token)
	if err != nil {
		return abort(err)
	}
	defer unpublish()
	// A restart and a reload read the config file again (liveConfig).
	ctl := control.New(sup, nodeName, n.peers(), append(controlOptions(cat, enabled, sup, f.shared, nodeName), control.WithConfig(live))...)
	endpoints := control.MakeEndpoints(ctl, service.Chain(rtLogger, reg, "runtime", &service.Base{RequestTimeout: control.RequestTimeout}))
	// The dashboard at /ui/ acts through the same endpoints; its event
	// streams end with the log followers.
	apiHandler = control.NewHTTPHandler(endpoints,
		rtLogger, token, reg, sup.Ready, control.WithLogs(ring, logsDone),
		dashboardRoutes(nodeName, endpoints, ring, sup, watcher, logsDone, rtLogger))
	// Node: the registry, control across nodes and shared revocations.
	// Added before the API and the supervisor, so that at shutdown its
	// interrupt runs first: the other nodes stop routing here before any
	// service of this node begins to stop.
	n.addActor(&g, background, ctl, familyStarted)
	api.AddTo(&g)
	// Reload: SIGHUP restarts exactly the services whose settings changed.
	addReloadActor(&g, rtLogger, live)
	// Supervisor: runs the services, started above, until interrupted,
	// then stops them in reverse dependency order.
	g.Add(func() error {
		return <-supDone
	}, func(error) {
		stopServices()
	})
	err = g.Run()
	if errors.Is(err, run.ErrSignal) {
		level.Info(rtLogger).Log("msg", "runtime stopped")
		return nil
	}
	return err
}
