package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/pprof"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
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

// stopFunc stops a server and waits for it to return.
type stopFunc func() error

// benchLogger discards every line but, like a production logger, filters at
// info first, so the chain's per-call debug line is dropped the way it is
// in production.
func benchLogger() log.Logger {
	return level.NewFilter(log.NewNopLogger(), level.AllowInfo())
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

// startFramework serves frameworkHandler on a transport.Listen server, so
// with the production http.Server settings.
func startFramework() (addr string, stop stopFunc, err error) {
	logger := benchLogger()
	srv, err := transport.Listen(logger, "127.0.0.1:0", frameworkHandler(logger, productionChain(logger).Wrap), drain)
	if err != nil {
		return "", nil, err
	}

	// transport.Server is an oklog/run actor; a second actor that waits for
	// stop lets this program end the group when the measurement is done.
	var g run.Group
	srv.AddTo(&g)
	quit := make(chan struct{})
	g.Add(func() error { <-quit; return nil }, func(error) {})
	done := make(chan error, 1)
	goLabelled("framework", func() { done <- g.Run() })
	return srv.Addr(), func() error { close(quit); return <-done }, nil
}

// startPlain serves plainHandler on a bare http.Server.
func startPlain() (addr string, stop stopFunc, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	srv := &http.Server{Handler: plainHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	goLabelled("plain", func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	})
	return ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("shut down plain server: %w", err)
		}
		return <-done
	}, nil
}

// goLabelled runs f in a goroutine carrying the pprof label side=name.
// Goroutines inherit labels, so every connection goroutine of a server
// started there is labelled too and a CPU profile can be split per side with
// -tagfocus=side=framework.
func goLabelled(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("side", name), func(context.Context) {
		go f()
	})
}
