package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

func ok(context.Context, any) (any, error) { return "ok", nil }

func explode(context.Context, any) (any, error) { panic("boom") }

func waitForDeadline(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func failWith(err error) kitendpoint.Endpoint {
	return func(context.Context, any) (any, error) { return nil, err }
}

func TestChainWrap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		e         kitendpoint.Endpoint
		want      any
		wantErr   error
		wantCode  apierr.Code
		wantInLog []string
	}{
		{
			name: "success passes through",
			e:    ok, want: "ok",
			wantInLog: []string{"level=debug", "endpoint=greet", "outcome=ok"},
		},
		{
			name: "business error keeps its kind",
			e:    failWith(fmt.Errorf("%w: bob", errUserNotFound)), wantErr: errUserNotFound, wantCode: apierr.CodeNotFound,
			wantInLog: []string{"level=debug", "outcome=not_found"},
		},
		{
			name: "panic becomes an internal error",
			e:    explode, wantErr: apierr.ErrInternal, wantCode: apierr.CodeInternal,
			wantInLog: []string{"level=error", `msg="endpoint panicked"`, "endpoint=greet", "panic=boom", "stack=", "level=warn", "outcome=internal"},
		},
		{
			name:    "panic under a timeout is still internal",
			timeout: time.Minute,
			e:       explode, wantErr: apierr.ErrInternal, wantCode: apierr.CodeInternal,
		},
		{
			name:    "deadline becomes unavailable",
			timeout: 10 * time.Millisecond,
			e:       waitForDeadline, wantErr: apierr.ErrUnavailable, wantCode: apierr.CodeUnavailable,
			wantInLog: []string{"outcome=unavailable"},
		},
		{
			name:    "deadline seen through Err alone becomes unavailable",
			timeout: 10 * time.Millisecond,
			e: func(ctx context.Context, _ any) (any, error) {
				// A handler that checks between steps and never
				// selects on Done.
				for ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				return nil, fmt.Errorf("step: %w", ctx.Err())
			},
			wantErr: apierr.ErrUnavailable, wantCode: apierr.CodeUnavailable,
		},
		{
			name:    "a kind wrapping the deadline is kept",
			timeout: 10 * time.Millisecond,
			e: func(ctx context.Context, _ any) (any, error) {
				<-ctx.Done()
				return nil, fmt.Errorf("%w: lock held: %w", apierr.ErrConflict, ctx.Err())
			},
			wantErr: apierr.ErrConflict, wantCode: apierr.CodeConflict,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := endpoint.Chain{Logger: log.NewLogfmtLogger(log.NewSyncWriter(&buf)), Timeout: tc.timeout}
			e := c.Wrap("greet", tc.e)
			// Twice: the process and the endpoint survive a panic.
			for range 2 {
				got, err := e(context.Background(), nil)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want one that is %v", err, tc.wantErr)
				}
				if err != nil {
					if gotCode := apierr.CodeOf(err); gotCode != tc.wantCode {
						t.Errorf("CodeOf(err) = %q, want %q", gotCode, tc.wantCode)
					}
				}
				if got != tc.want {
					t.Errorf("response = %#v, want %#v", got, tc.want)
				}
			}
			gotLog := buf.String()
			for _, want := range tc.wantInLog {
				if !strings.Contains(gotLog, want) {
					t.Errorf("log lacks %q:\n%s", want, gotLog)
				}
			}
		})
	}
}

func TestTimeoutSetsDeadline(t *testing.T) {
	for _, tc := range []struct {
		name         string
		timeout      time.Duration
		wantDeadline bool
	}{
		{name: "timeout", timeout: time.Hour, wantDeadline: true},
		{name: "no timeout", timeout: 0, wantDeadline: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotDeadline bool
			e := endpoint.Chain{Logger: log.NewNopLogger(), Timeout: tc.timeout}.Wrap("x", func(ctx context.Context, _ any) (any, error) {
				_, gotDeadline = ctx.Deadline()
				return nil, nil
			})
			if _, err := e(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if gotDeadline != tc.wantDeadline {
				t.Errorf("deadline set = %t, want %t", gotDeadline, tc.wantDeadline)
			}
		})
	}
}

func TestTimeoutCallerCancelIsNotUnavailable(t *testing.T) {
	// A caller that goes away is no sign of an overloaded service.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := endpoint.Timeout(time.Hour)(waitForDeadline)
	_, err := e(ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, apierr.ErrUnavailable) {
		t.Errorf("err = %v is unavailable, want it left alone", err)
	}
}

type series struct{ endpoint, outcome string }

func TestInstrument(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := endpoint.Chain{
		Logger:  log.NewNopLogger(),
		Metrics: endpoint.NewMetrics(reg, "users"),
		Timeout: 10 * time.Millisecond,
	}
	get := c.Wrap("get", func(_ context.Context, req any) (any, error) {
		if req == "bob" {
			return nil, fmt.Errorf("%w: bob", errUserNotFound)
		}
		return req, nil
	})
	create := c.Wrap("create", func(ctx context.Context, req any) (any, error) {
		switch req {
		case "panic":
			panic("boom")
		case "slow":
			return waitForDeadline(ctx, req)
		}
		return nil, apierr.ErrConflict
	})
	for _, call := range []struct {
		e   kitendpoint.Endpoint
		req string
	}{
		{get, "alice"}, {get, "carol"}, {get, "bob"},
		{create, "alice"}, {create, "panic"}, {create, "slow"},
	} {
		_, _ = call.e(context.Background(), call.req)
	}

	// The ok series of every wrapped endpoint exists from the start, at 0
	// until a call succeeds, so a dashboard never sees it missing.
	want := map[series]float64{
		{"get", "ok"}:             2,
		{"create", "ok"}:          0,
		{"get", "not_found"}:      1,
		{"create", "conflict"}:    1,
		{"create", "internal"}:    1,
		{"create", "unavailable"}: 1,
	}
	got := gather(t, reg)
	for _, name := range []string{"ocis_endpoint_requests_total", "ocis_endpoint_request_duration_seconds"} {
		if len(got[name]) != len(want) {
			t.Errorf("%s: got %d series %v, want %d %v", name, len(got[name]), got[name], len(want), want)
		}
		for s, w := range want {
			if got[name][s] != w {
				t.Errorf("%s{endpoint=%q,outcome=%q} = %v, want %v", name, s.endpoint, s.outcome, got[name][s], w)
			}
		}
	}
	for _, ep := range []string{"get", "create"} {
		if v := got["ocis_endpoint_requests_in_flight"][series{endpoint: ep}]; v != 0 {
			t.Errorf("requests_in_flight{endpoint=%q} = %v after every call returned, want 0", ep, v)
		}
	}
}

func TestInstrumentInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := endpoint.NewMetrics(reg, "users")
	var gotDuring float64
	e := endpoint.Instrument(m, "list")(func(context.Context, any) (any, error) {
		gotDuring = gather(t, reg)["ocis_endpoint_requests_in_flight"][series{endpoint: "list"}]
		panic("boom")
	})
	e = endpoint.Recover(log.NewNopLogger())(e)
	_, _ = e(context.Background(), nil)
	if gotDuring != 1 {
		t.Errorf("requests_in_flight during the call = %v, want 1", gotDuring)
	}
	// The gauge comes down even when the endpoint panics.
	if got := gather(t, reg)["ocis_endpoint_requests_in_flight"][series{endpoint: "list"}]; got != 0 {
		t.Errorf("requests_in_flight after the call = %v, want 0", got)
	}
}

// gather reads reg back: per metric family, the value of each series
// (counter value, histogram sample count or gauge value) by its endpoint
// and outcome labels. Every series must carry service="users".
func gather(t *testing.T, reg *prometheus.Registry) map[string]map[series]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[series]float64{}
	for _, mf := range families {
		out[mf.GetName()] = map[series]float64{}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["service"] != "users" {
				t.Errorf("%s has service=%q, want users", mf.GetName(), labels["service"])
			}
			s := series{labels["endpoint"], labels["outcome"]}
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()][s] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()][s] = float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				out[mf.GetName()][s] = m.GetGauge().GetValue()
			default:
				t.Errorf("%s: unexpected metric type %v", mf.GetName(), mf.GetType())
			}
		}
	}
	return out
}

func TestNewMetricsFreshRegistries(t *testing.T) {
	// A restarted service registers its instruments again on a new
	// registry; that must not collide with the previous start.
	for range 2 {
		m := endpoint.NewMetrics(prometheus.NewRegistry(), "users")
		if m.Requests == nil || m.Duration == nil {
			t.Fatal("NewMetrics returned nil instruments")
		}
	}
}
