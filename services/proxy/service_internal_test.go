package proxy

import (
	"math"
	"sync/atomic"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/registry"
)

// The round-robin counter only grows; where it passes the int range the
// rotation must go on, not panic on a negative index.
func TestBalancerCounterWraps(t *testing.T) {
	reg := registry.NewMemory()
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		if err := reg.Register(registry.Instance{Service: "users", Node: "n", Addr: addr, Routes: []string{"/api/v1/users"}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		counter uint64
	}{
		{"int32 boundary", math.MaxInt32},
		{"int64 boundary", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBalancer(reg)
			c := new(atomic.Uint64)
			c.Store(tt.counter - 1)
			b.counters.Store("users", c)
			// Three calls straddle the boundary; each must start at a
			// different instance.
			seen := map[string]bool{}
			for range 3 {
				_, order, _ := b.Route("/api/v1/users")
				if len(order) != 3 {
					t.Fatalf("got %d instances, want 3", len(order))
				}
				seen[order[0].Addr] = true
			}
			if len(seen) != 3 {
				t.Errorf("first instances = %v, want all three", seen)
			}
		})
	}
}
