package events

import (
	"context"
	"testing"
	"time"
)

// benchPublisher runs a publisher against an embedded server (over
// loopback TCP) until the benchmark ends.
func benchPublisher(b *testing.B) *Publisher {
	b.Helper()
	nc := connect(b, startServer(b), "bench")
	pub, err := NewPublisher(nc, PublisherOptions{OutboxSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = pub.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return pub
}

// benchEvent is about the size of a file.written event.
func benchEvent(b *testing.B) Event {
	ev, err := New("file.written", "alice", "/docs/report.txt", map[string]any{"path": "/docs/report.txt", "size": 1234, "etag": `"5d41402abc4b2a76"`, "new": true})
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkPublish is what Publish costs its caller, a request handler:
// building the message and queueing it, with the sender running.
func BenchmarkPublish(b *testing.B) {
	pub := benchPublisher(b)
	ev := benchEvent(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ev.ID = ""
		if err := pub.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishThroughput is events per second from Publish to the
// stream's acknowledgement.
func BenchmarkPublishThroughput(b *testing.B) {
	pub := benchPublisher(b)
	ev := benchEvent(b)
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		ev.ID = ""
		_ = pub.Publish(ctx, ev)
	}
	for pub.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPrepare is the part of Publish that builds the message: the
// envelope's JSON and the headers, without a server.
func BenchmarkPrepare(b *testing.B) {
	nc := connect(b, startServer(b), "bench")
	pub, err := NewPublisher(nc, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ev := benchEvent(b)
	ctx := WithTraceContext(context.Background(), TraceContext{Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	b.ReportAllocs()
	for b.Loop() {
		ev.ID = ""
		if _, err := pub.prepare(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
