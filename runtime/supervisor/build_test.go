package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// TestBuildFailureFailsAtOnce: a service that cannot be built from its
// settings would fail alike on every retry, so it goes to failed at its
// first try, without backoff; a restart builds it again.
func TestBuildFailureFailsAtOnce(t *testing.T) {
	var builds atomic.Int32
	var fixed atomic.Bool
	good := &fakeSvc{}
	u := Unit{Name: "svc", Build: func() (service.Runner, error) {
		builds.Add(1)
		if fixed.Load() {
			return good.Build()
		}
		return nil, errors.New("data dir unreadable")
	}}
	sup, _ := supervise(t, testPolicy(), u)
	st := awaitState(t, sup, "svc", StateFailed)
	if got := builds.Load(); got != 1 {
		t.Errorf("builds before failed = %d, want 1 (no retries)", got)
	}
	if st.Restarts != 0 || !strings.Contains(st.LastError, "data dir unreadable") || !strings.Contains(st.LastError, "ocis restart svc") {
		t.Errorf("failed status = %+v; want no restarts and the reason with what to do", st)
	}
	fixed.Store(true)
	st, err := sup.Restart(context.Background(), "svc")
	if err != nil || st.State != StateRunning {
		t.Fatalf("restart after the fix: %+v, %v; want running", st, err)
	}
}
