package control

import (
	"context"
	"net/http"
	"sync"
	"time"

	ocisservice "github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// healthTimeout bounds what one list waits for the services' /readyz:
// all are asked at once, and one that does not answer in time is
// unreachable, so a hung service never holds up `ocis list`.
const healthTimeout = 500 * time.Millisecond

// What a running service's own /readyz answered (Status.Health).
const (
	HealthReady       = "ready"       // 200
	HealthUnready     = "unready"     // any other status
	HealthUnreachable = "unreachable" // no answer within healthTimeout
)

// probe asks running services whether they are ready.
type probe struct {
	hc *http.Client
}

func newProbe() *probe {
	return &probe{hc: &http.Client{Timeout: healthTimeout}}
}

// health fills in the Health of every running status that has a debug
// address, asking them all at once.
func (p *probe) health(ctx context.Context, statuses []supervisor.Status) {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range statuses {
		st := &statuses[i]
		if st.State != supervisor.StateRunning || st.DebugAddr == "" {
			continue
		}
		wg.Go(func() { st.Health = p.readyz(ctx, st.DebugAddr) })
	}
	wg.Wait()
}

func (p *probe) readyz(ctx context.Context, addr string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ocisservice.Dialable(addr)+"/readyz", nil)
	if err != nil {
		return HealthUnreachable
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return HealthUnreachable
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return HealthUnready
	}
	return HealthReady
}
