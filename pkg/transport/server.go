package transport

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
)

// Server is an HTTP listener run as an oklog/run actor. The listener is
// opened by Listen before the actor is added, so a taken port fails at once
// instead of inside the group.
type Server struct {
	logger log.Logger
	ln     net.Listener
	srv    *http.Server
	drain  time.Duration
	done   chan struct{}
}

// DefaultBodyTimeout is how long a request, headers and body, may take to
// arrive unless the listener is given another bound.
const DefaultBodyTimeout = 10 * time.Second

// maxHeaderTimeout bounds the headers alone when the body timeout is longer.
const maxHeaderTimeout = 10 * time.Second

// ListenOption adjusts a server opened by Listen.
type ListenOption func(*http.Server)

// BodyTimeout bounds the time a whole request, headers and body, may take
// to arrive (default DefaultBodyTimeout). A body still arriving at the
// bound fails to read, which DecodeJSON answers with 408 request_timeout.
// Uploads that may take longer replace the bound with an idle deadline
// (IdleBody), and only once the request is authenticated, so no anonymous
// sender holds a connection past it.
func BodyTimeout(d time.Duration) ListenOption {
	return func(s *http.Server) {
		s.ReadTimeout = d
		s.ReadHeaderTimeout = min(d, maxHeaderTimeout)
	}
}

// OnShutdown calls f when the server begins to shut down, for handlers
// that stream until told to stop (a follow of the logs): the drain waits
// for them otherwise.
func OnShutdown(f func()) ListenOption {
	return func(s *http.Server) { s.RegisterOnShutdown(f) }
}

// Listen opens addr and returns a server for h on it that, when
// interrupted, drains in-flight requests for up to drain before closing.
func Listen(logger log.Logger, addr string, h http.Handler, drain time.Duration, opts ...ListenOption) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:        h,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		// net/http's own complaints (TLS noise, handler panics) go to the
		// service's logger, not the global log package.
		ErrorLog: stdlog.New(log.NewStdlibAdapter(level.Warn(logger)), "", 0),
	}
	BodyTimeout(DefaultBodyTimeout)(srv)
	for _, o := range opts {
		o(srv)
	}
	return &Server{
		logger: log.With(logger, "addr", ln.Addr().String()),
		ln:     ln,
		drain:  drain,
		done:   make(chan struct{}),
		srv:    srv,
	}, nil
}

// Addr is the address the server listens on (the real port when the
// configured one was :0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddTo adds the server to g as one actor.
func (s *Server) AddTo(g *run.Group) { g.Add(s.serve, s.shutdown) }

// AddToThen is AddTo that also closes served once the server stopped
// serving: after its drain on a shutdown, or at once when it failed.
func (s *Server) AddToThen(g *run.Group, served chan<- struct{}) {
	g.Add(func() error {
		defer close(served)
		return s.serve()
	}, s.shutdown)
}

// serve runs until shutdown; after a shutdown it waits for the drain to end
// so that the group returns only once every accepted request is answered.
func (s *Server) serve() error {
	level.Info(s.logger).Log("msg", "listening")
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-s.done
		return nil
	}
	return fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
}

// shutdown starts a graceful drain and returns at once: oklog/run calls the
// interrupts one after another, so a blocking one would serialise the drains
// of every server in the group.
func (s *Server) shutdown(error) {
	go func() {
		defer close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), s.drain)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			level.Warn(s.logger).Log("msg", "drain cut short, closing connections", "err", err)
			_ = s.srv.Close()
		}
	}()
}

// Close releases the listener of a server that was never run.
func (s *Server) Close() error { return s.ln.Close() }
