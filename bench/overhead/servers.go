package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/metrics"
	"syscall"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// EchoRequest is the small JSON body both sides decode.
type EchoRequest struct {
	Message string `json:"message"`
	Seq     int64  `json:"seq"`
}

// EchoResponse is what both sides answer; the load generator checks that it
// carries the request's fields back, so an error page never counts as a
// request served.
type EchoResponse struct {
	Message string `json:"message"`
	Seq     int64  `json:"seq"`
	Length  int    `json:"length"`
}

// echo is the business code both sides share, so that the only difference
// between them is what sits around it.
func echo(_ context.Context, req EchoRequest) (EchoResponse, error) {
	return EchoResponse{Message: req.Message, Seq: req.Seq, Length: len(req.Message)}, nil
}

// echoPath is the route both sides serve.
const echoPath = "/api/v1/echo"

// drain bounds the graceful shutdown of each server at the end of the run.
const drain = 5 * time.Second

// benchLogger is the production logger (pkg/logging) at its default
// level, info, writing to nowhere: the chain's per-call debug line is
// dropped the way it is in production, at the same cost.
func benchLogger() log.Logger {
	logger, err := logging.New(io.Discard, "info", "logfmt")
	if err != nil {
		panic(err) // a constant level and format
	}
	return logger
}

// productionChain is the middleware every service endpoint gets: recovery,
// a timeout, logging and metrics, as endpoint.Chain builds them.
func productionChain(logger log.Logger) endpoint.Chain {
	return endpoint.Chain{
		Logger:  logger,
		Metrics: endpoint.NewMetrics(prometheus.NewRegistry(), "bench"),
		Timeout: 30 * time.Second,
	}
}

// wrapFunc applies middleware to a named endpoint, as endpoint.Chain.Wrap
// does; the handler benchmark passes others to cost each layer alone.
type wrapFunc func(name string, e kitendpoint.Endpoint) kitendpoint.Endpoint

// frameworkHandler serves echo the way a service does: a transport.Router
// route decoded with the strict JSON decoder, under the body limit and the
// middleware wrap applies (productionChain(logger).Wrap in the measurement).
func frameworkHandler(logger log.Logger, wrap wrapFunc) http.Handler {
	// Every route is public, so the router needs no keys.
	router := transport.NewRouter(logger, nil)
	router.Handle("POST "+echoPath,
		wrap("echo", endpoint.Typed(echo)),
		transport.DecodeJSON[EchoRequest],
		transport.Public(),
	)
	return router
}

// plainHandler serves echo with what a developer writes without the
// framework: one http.HandlerFunc that decodes and encodes the same types.
func plainHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+echoPath, func(w http.ResponseWriter, r *http.Request) {
		var req EchoRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, _ := echo(r.Context(), req)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(resp)
	})
	return mux
}

// serveSide serves one side on cfg.addr until SIGTERM or SIGINT: the
// framework's through transport.Listen, so with the production http.Server
// settings and the run-group actor, plain's on a bare http.Server. A side
// listener on cfg.statsAddr answers GET /allocs with the process's heap
// allocations so far, objects and bytes, which the measuring process reads
// before and after a round.
func serveSide(cfg config) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	stats, err := net.Listen("tcp", cfg.statsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.statsAddr, err)
	}
	statsMux := http.NewServeMux()
	statsMux.HandleFunc("GET /allocs", func(w http.ResponseWriter, _ *http.Request) {
		objects, bytes := heapAllocs()
		fmt.Fprintf(w, "%d %d\n", objects, bytes)
	})
	go func() { _ = http.Serve(stats, statsMux) }()

	if cfg.serve == "plain" {
		ln, err := net.Listen("tcp", cfg.addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.addr, err)
		}
		srv := &http.Server{Handler: plainHandler(), ReadHeaderTimeout: 10 * time.Second}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		select {
		case <-sigs:
		case err := <-done:
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		return srv.Shutdown(ctx)
	}

	logger := benchLogger()
	srv, err := transport.Listen(logger, cfg.addr, frameworkHandler(logger, productionChain(logger).Wrap), drain)
	if err != nil {
		return err
	}
	var g run.Group
	srv.AddTo(&g)
	quit := make(chan struct{})
	g.Add(func() error {
		select {
		case <-sigs:
		case <-quit:
		}
		return nil
	}, func(error) { close(quit) })
	return g.Run()
}

// heapAllocs is the process's cumulative heap allocations, objects and
// bytes.
func heapAllocs() (objects, bytes uint64) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	return samples[0].Value.Uint64(), samples[1].Value.Uint64()
}
