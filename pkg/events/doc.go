// Package events carries what happened in one service to the services
// that react to it, over NATS JetStream, at least once.
//
// A producer builds a Publisher and calls Publish from its request
// handlers: the event goes into a bounded in-memory outbox and Publish
// returns at once; the Publisher's actor sends it to the stream in the
// background, retrying until JetStream acknowledges it. A consumer builds
// a Consumer with a durable name, the event types it wants and a handler,
// and runs it as an actor: every event is handed to the handler until the
// handler succeeds, fails permanently, or runs out of deliveries.
//
// Delivery is at least once, so handlers must be idempotent: an event may
// arrive twice (a publisher retry outside JetStream's duplicate window, a
// redelivery after a crash before the ack). Idempotency belongs in the
// consumer's store, keyed by the event id, in the same transaction as the
// event's effect; Ledger does that for a bbolt store.
//
// docs/events.md describes the envelope, the stream and consumer settings,
// the guarantees and the wiring.
package events
