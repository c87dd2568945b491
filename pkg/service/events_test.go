package service_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/events"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// TestEvents checks what a producing service gets for each of its
// settings: a publisher and its actor only when it publishes and the
// process has NATS, and a line at start saying why not otherwise.
func TestEvents(t *testing.T) {
	// Nothing listens there: the connection is made in the background
	// and never used.
	withNATS := &natsconn.Options{URLs: []string{"nats://127.0.0.1:1"}}
	for _, tc := range []struct {
		name       string
		nats       *natsconn.Options
		publish    bool
		wantReal   bool
		wantLogged string
	}{
		{name: "publishes", nats: withNATS, publish: true, wantReal: true},
		{name: "turned off", nats: withNATS, publish: false, wantLogged: "--publish-events=false"},
		{name: "no NATS", nats: nil, publish: true, wantLogged: "no NATS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf lockedBuffer
			logger := log.NewLogfmtLogger(&buf)
			d := service.Descriptor{Name: "storage", HTTPAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0"}
			b := service.NewBase(d, true)
			env := service.Env{Logger: logger, Node: "n1", NATSClient: tc.nats}
			pub, actors, closeNATS, err := service.Events(env, "storage", tc.publish, logger, prometheus.NewRegistry(), &b)
			if err != nil {
				t.Fatal(err)
			}
			defer closeNATS()
			_, gotReal := pub.(*events.Publisher)
			if gotReal != tc.wantReal || (len(actors) == 1) != tc.wantReal {
				t.Errorf("publisher %T with %d actors, want a real one: %t", pub, len(actors), tc.wantReal)
			}
			if !strings.Contains(buf.String(), tc.wantLogged) {
				t.Errorf("log %q lacks %q", buf.String(), tc.wantLogged)
			}
		})
	}
}

// lockedBuffer is a log's buffer that the NATS client's goroutines write
// to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A connection's hold ends when the actor that first uses it begins, not
// before; a service run alone (no Started) holds nothing.
func TestHoldNATS(t *testing.T) {
	t.Run("in a family", func(t *testing.T) {
		hold, firstUse := service.HoldNATS(service.Env{Started: make(chan struct{})})
		var heldAtExecute bool
		a := firstUse(service.Actor{
			Execute: func() error {
				select {
				case <-hold:
				default:
					heldAtExecute = true
				}
				return nil
			},
			Interrupt: func(error) {},
		})
		select {
		case <-hold:
			t.Fatal("hold ended before the actor began")
		default:
		}
		if err := a.Execute(); err != nil {
			t.Fatal(err)
		}
		if heldAtExecute {
			t.Error("the actor began with the connection still held")
		}
		_ = a.Execute() // a second run releases nothing twice
	})
	t.Run("run alone", func(t *testing.T) {
		hold, firstUse := service.HoldNATS(service.Env{})
		if hold != nil {
			t.Error("a service run alone got a hold")
		}
		ran := false
		if err := firstUse(service.Actor{Execute: func() error { ran = true; return nil }}).Execute(); err != nil || !ran {
			t.Errorf("actor: ran %v, err %v", ran, err)
		}
	})
}
