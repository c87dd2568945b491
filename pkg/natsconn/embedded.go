// Package natsconn is how code in an ocis process reaches NATS: the
// process-wide handle on the embedded server (when this process runs the
// nats service) and the one way to open a client connection, in-process
// when that server runs here and over the network otherwise.
//
// It lives apart from services/nats because services never import one
// another's internals: the nats service publishes its server through an
// Embedded handle, and the runtime, the registry and the events package
// connect through Connect without knowing which service, if any, serves
// NATS in this process.
package natsconn

import (
	"errors"
	"net"
	"sync"
)

// ErrNotRunning is returned by Embedded.InProcessConn while no server is
// running in this process.
var ErrNotRunning = errors.New("no embedded nats server is running in this process")

// InProcessServer is what the nats service hands the Embedded handle: a
// server that accepts connections without the network. *server.Server of
// nats-server implements it.
type InProcessServer interface {
	InProcessConn() (net.Conn, error)
}

// Embedded is the process's handle on its embedded NATS server. The runtime
// creates one per process and passes it to the nats service, which sets the
// server while it runs, and to Connect, which prefers it over the network.
// A nil *Embedded is valid and never has a server.
type Embedded struct {
	mu  sync.RWMutex
	srv InProcessServer
	gen uint64
	// next, made by the first watch after a Set, is closed at the next
	// Set, so that connections waiting to reconnect try again the moment
	// a server comes up.
	next chan struct{}
}

// NewEmbedded returns a handle with no server.
func NewEmbedded() *Embedded { return &Embedded{} }

// Set makes srv the process's embedded server and returns the function
// that withdraws it. The nats service calls Set once its server is ready
// and the release function before it shuts the server down; a release
// after another Set (a restart raced ahead) does nothing. On a nil handle
// Set does nothing: the process shares its server with no one.
func (e *Embedded) Set(srv InProcessServer) (release func()) {
	if e == nil {
		return func() {}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	gen := e.gen
	e.srv = srv
	if e.next != nil {
		close(e.next)
		e.next = nil
	}
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.gen == gen {
			e.srv = nil
		}
	}
}

// Running reports whether a server is set.
func (e *Embedded) Running() bool {
	if e == nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.srv != nil
}

// InProcessConn opens an in-process connection to the server, or fails
// with ErrNotRunning when there is none.
func (e *Embedded) InProcessConn() (net.Conn, error) {
	conn, _, err := e.inProcessConn()
	return conn, err
}

// inProcessConn is InProcessConn that also says how many servers had been
// set when it tried (see watch).
func (e *Embedded) inProcessConn() (net.Conn, uint64, error) {
	if e == nil {
		return nil, 0, ErrNotRunning
	}
	e.mu.RLock()
	srv, gen := e.srv, e.gen
	e.mu.RUnlock()
	if srv == nil {
		return nil, gen, ErrNotRunning
	}
	conn, err := srv.InProcessConn()
	return conn, gen, err
}

// watch returns how many servers have been set so far and a channel
// closed at the next Set. On a nil handle the channel is nil: no server
// ever comes.
func (e *Embedded) watch() (gen uint64, next <-chan struct{}) {
	if e == nil {
		return 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.next == nil {
		e.next = make(chan struct{})
	}
	return e.gen, e.next
}
