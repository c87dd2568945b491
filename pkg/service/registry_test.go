package service_test

import (
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// TestRegistriesShareTheProcessCollectors checks that registries made for
// several service starts, which share one Go and one process collector,
// each expose the runtime's and the process's metrics, also when gathered
// at the same time (go test -race).
func TestRegistriesShareTheProcessCollectors(t *testing.T) {
	const n = 4
	got := make([][]*dto.MetricFamily, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		reg := service.NewRegistry()
		wg.Go(func() { got[i], errs[i] = reg.Gather() })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("registry %d: %v", i, errs[i])
		}
		names := map[string]bool{}
		for _, mf := range got[i] {
			names[mf.GetName()] = true
		}
		for _, want := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
			if !names[want] {
				t.Errorf("registry %d lacks %s", i, want)
			}
		}
	}
}
