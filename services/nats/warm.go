package nats

import "crypto/ed25519"

// Warm does, in the background, the part of a process's first nats server
// start that needs none of its settings. The server's identity is an
// ed25519 key pair made at every start (nats-server's nkeys), and the
// first ed25519 key of a process costs about a millisecond of CPU more
// than any later one: the base-point table every key is computed from is
// built once, at that first use. ocis server calls Warm while it reads and
// checks its settings, one goroutine's work with a second CPU idle, so
// that the table is built by the time the server starts, rather than while
// every service of the family competes for the CPUs. The key made here is
// thrown away; the server still makes its own.
func Warm() {
	go func() { _ = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) }()
}
