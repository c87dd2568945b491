package registry

import (
	"sync"
	"sync/atomic"
)

// Cluster is the registry of a node among several: this process's own
// instances from a Memory (with their in-process handlers, never waiting
// on NATS) merged with the running instances of the other nodes from a
// Watcher. Writes go to the Memory; the runtime publishes this node's
// state to the other nodes through an Announcer.
//
// It works before NATS is reachable, and while it is not: the remote part
// is then empty, or the last known records until they go stale.
type Cluster struct {
	local  *Memory
	remote *Watcher

	mu    sync.Mutex
	cache atomic.Pointer[merged]
}

// merged is a table built from one local table and one remote view.
type merged struct {
	local  *Table
	remote *remoteView
	table  *Table
}

// NewCluster merges local and remote.
func NewCluster(local *Memory, remote *Watcher) *Cluster {
	return &Cluster{local: local, remote: remote}
}

// Declare implements Registry.
func (c *Cluster) Declare(service string, routes, public []string) error {
	return c.local.Declare(service, routes, public)
}

// Register implements Registry: it records an instance of this process.
func (c *Cluster) Register(in Instance) error { return c.local.Register(in) }

// Deregister implements Registry.
func (c *Cluster) Deregister(in Instance) error { return c.local.Deregister(in) }

// Table implements Registry. It costs two atomic loads while nothing
// changed; after a change the first reader builds the merged table once.
func (c *Cluster) Table() *Table {
	lt, rv := c.local.Table(), c.remote.view.Load()
	if m := c.cache.Load(); m != nil && m.local == lt && m.remote == rv {
		return m.table
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lt, rv = c.local.Table(), c.remote.view.Load()
	if m := c.cache.Load(); m != nil && m.local == lt && m.remote == rv {
		return m.table
	}
	instances := append(lt.All(), rv.instances...)
	t := NewTable(lt.Declarations(), instances)
	c.cache.Store(&merged{local: lt, remote: rv, table: t})
	return t
}
