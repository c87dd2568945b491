package proxy_test

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/service/servicetest"
	"github.com/ocis-runtime/ocis/pkg/tracing"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

const clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// TestTraceThroughProxy runs the real proxy and storage services, traced
// into memory, and sends an upload and a download through the proxy: each
// request is one trace holding the proxy's server and forward spans and
// storage's server and endpoint spans, parent to child, on every path a
// request can take (the reverse proxy for the upload and the proxy's own
// connections for the download when storage is remote; the colocated call
// when it runs in the process). A client's traceparent is kept: its trace
// ID is the trace of every span, and the proxy's access line carries it.
func TestTraceThroughProxy(t *testing.T) {
	for _, plane := range planes() {
		for _, colocated := range []bool{false, true} {
			for _, withParent := range []bool{false, true} {
				name := fmt.Sprintf("%s/colocated=%t/client traceparent=%t", plane, colocated, withParent)
				t.Run(name, func(t *testing.T) {
					exp := tracetest.NewInMemoryExporter()
					tr := tracing.NewWithProcessor(sdktrace.NewSimpleSpanProcessor(exp), 1, tracing.Options{Node: "n1"})
					var logs servicetest.Logs
					url, tok := tracedFamily(t, tr, plane, colocated, log.NewLogfmtLogger(&logs))

					for _, req := range []struct {
						method, endpoint string
						body             io.Reader
						wantStatus       int
					}{
						{http.MethodPut, "storage.put", strings.NewReader("hello"), http.StatusCreated},
						{http.MethodGet, "storage.get", nil, http.StatusOK},
					} {
						exp.Reset()
						r, err := http.NewRequest(req.method, url+"/api/v1/files/notes/hello.txt", req.body)
						if err != nil {
							t.Fatal(err)
						}
						r.Header.Set("Authorization", "Bearer "+tok)
						if withParent {
							r.Header.Set("Traceparent", "00-"+clientTraceID+"-00f067aa0ba902b7-01")
						}
						resp, err := http.DefaultTransport.RoundTrip(r)
						if err != nil {
							t.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != req.wantStatus {
							t.Fatalf("%s: status %d, want %d", req.method, resp.StatusCode, req.wantStatus)
						}

						// The proxy's spans end once the answer went out; the
						// client may have it a moment before.
						chain := []string{"proxy " + req.method, "proxy.forward", "storage " + req.method + " /api/v1/files/{path...}", req.endpoint}
						var spans map[string]tracetest.SpanStub
						eventually(t, func() error {
							spans = map[string]tracetest.SpanStub{}
							for _, s := range exp.GetSpans() {
								spans[s.Name] = s
							}
							for _, n := range chain {
								if _, ok := spans[n]; !ok {
									return fmt.Errorf("%s: no span %q among %d", req.method, n, len(spans))
								}
							}
							return nil
						})
						root := spans[chain[0]]
						traceID := root.SpanContext.TraceID()
						if withParent && traceID.String() != clientTraceID {
							t.Errorf("%s: trace %s, want the client's %s", req.method, traceID, clientTraceID)
						}
						for i := 1; i < len(chain); i++ {
							parent, child := spans[chain[i-1]], spans[chain[i]]
							if child.SpanContext.TraceID() != traceID {
								t.Errorf("%s: span %q in trace %s, want %s", req.method, chain[i], child.SpanContext.TraceID(), traceID)
							}
							if child.Parent.SpanID() != parent.SpanContext.SpanID() {
								t.Errorf("%s: span %q's parent is %s, want %q (%s)", req.method, chain[i], child.Parent.SpanID(), chain[i-1], parent.SpanContext.SpanID())
							}
						}
						if got := resourceOf(spans[chain[2]], "service.name"); got != "storage" {
							t.Errorf("storage's span has service.name %q", got)
						}
						eventually(t, func() error {
							if !strings.Contains(logs.String(), "trace_id="+traceID.String()) {
								return fmt.Errorf("%s: no log line with trace_id=%s:\n%s", req.method, traceID, logs.String())
							}
							return nil
						})
					}
				})
			}
		}
	}
}

// tracedFamily starts storage and the proxy, both traced by tr, and
// returns the proxy's URL and a token for alice.
func tracedFamily(t *testing.T, tr *tracing.Tracing, plane string, colocated bool, logger log.Logger) (string, string) {
	t.Helper()
	keys := newKeys(t, testSecret)
	shared := &service.Shared{BaseDataPath: t.TempDir(), JWTSecret: testSecret, LogLevel: "info", LogFormat: "logfmt", Revocations: auth.NewRevocations()}
	reg := registry.NewMemory()
	sd := storage.Descriptor()
	if err := reg.Declare(sd.Name, sd.Routes, sd.Public); err != nil {
		t.Fatal(err)
	}
	env := service.Env{Logger: logger, Shared: shared, Node: "n1", Registry: reg, Tracing: tr}

	st := servicetest.Start(t, configured(t, sd, "-data-dir", t.TempDir()), env)
	in := registry.Instance{Service: sd.Name, Node: "n1", Addr: st.Addrs.HTTP, Routes: sd.Routes, Public: sd.Public}
	if colocated {
		in.Local = st.Addrs.Handler
	}
	if err := reg.Register(in); err != nil {
		t.Fatal(err)
	}
	px := servicetest.Start(t, configured(t, proxy.Descriptor(), "-data-plane", plane), env)
	return "http://" + px.Addrs.HTTP, token(t, keys, time.Hour)
}

// configured is d's config on free loopback ports, with args on top.
func configured(t *testing.T, d service.Descriptor, args ...string) service.Config {
	t.Helper()
	cfg := d.NewConfig()
	fs := flagSet(d.Name)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(append([]string{"-http-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func resourceOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Resource.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
