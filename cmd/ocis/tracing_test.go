package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// span is what the test reads of one line the stdout exporter writes.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ SpanID string }
	Resource    []struct {
		Key   string
		Value struct{ Value any }
	}
}

func (s span) service() string {
	for _, kv := range s.Resource {
		if kv.Key == "service.name" {
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

// spansOf parses the JSON lines of out, skipping whatever else is there.
func spansOf(out string) []span {
	var spans []span
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s span
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Name != "" {
			spans = append(spans, s)
		}
	}
	return spans
}

// TestTracingToStdout runs the family with OCIS_TRACING_EXPORTER=stdout:
// the spans of a request through the proxy come out on standard output
// under the trace ID of the proxy's access line, from the proxy and the
// service behind it, and a client's traceparent is the trace of them all.
// An upload's event carries the trace on to the activity service's span.
func TestTracingToStdout(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_TRACING_EXPORTER"] = "stdout"
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	waitHTTP(t, "http://"+e.vars["OCIS_PROXY_DEBUG_ADDR"]+"/readyz", http.StatusOK)
	base := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]

	do := func(method, path, token, traceparent, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do(http.MethodPost, "/api/v1/tokens", "", "", `{"username":"admin","password":"`+testAdminPassword+`"}`)
	var login struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil || login.Token == "" {
		t.Fatalf("login through the proxy: %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	// A client's traceparent: users' spans join the client's trace.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp = do(http.MethodGet, "/api/v1/users/me", login.Token, "00-"+clientTrace+"-00f067aa0ba902b7-01", "")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("me: %d", resp.StatusCode)
	}
	// No traceparent: the proxy begins the trace; the access line names it.
	resp = do(http.MethodPut, "/api/v1/files/traced.txt", login.Token, "", "hello")
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	// accessTrace is the trace_id of the proxy's access line for method
	// and path, "" until there is one.
	traceID := regexp.MustCompile(`trace_id=([0-9a-f]{32})`)
	accessTrace := func(method, path string) string {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(line, "msg=request method="+method+" path="+path+" ") {
				if m := traceID.FindStringSubmatch(line); m != nil {
					return m[1]
				}
			}
		}
		return ""
	}
	var putTrace string
	waitFor(t, "the upload's access line with a trace_id", 10*time.Second, func() bool {
		putTrace = accessTrace(http.MethodPut, "/api/v1/files/traced.txt")
		return putTrace != ""
	})
	if got := accessTrace(http.MethodGet, "/api/v1/users/me"); got != clientTrace {
		t.Errorf("access line of /api/v1/users/me has trace_id %q, want the client's %s", got, clientTrace)
	}

	for _, tc := range []struct {
		name  string
		trace string
		want  map[string]string // span name → the service.name of its resource
	}{
		{"client traceparent", clientTrace, map[string]string{
			"proxy GET": "proxy", "proxy.forward": "proxy", "users GET /api/v1/users/me": "users", "users.me": "users"}},
		{"begun by the proxy", putTrace, map[string]string{
			"proxy PUT": "proxy", "proxy.forward": "proxy", "storage PUT /api/v1/files/{path...}": "storage", "storage.put": "storage",
			"activity.consume": "activity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var missing []string
			waitFor(t, "spans of trace "+tc.trace, 15*time.Second, func() bool {
				got := map[string]string{}
				for _, s := range spansOf(p.stdout.String()) {
					if s.SpanContext.TraceID == tc.trace {
						got[s.Name] = s.service()
					}
				}
				missing = missing[:0]
				for name, svc := range tc.want {
					if got[name] != svc {
						missing = append(missing, fmt.Sprintf("%s (service.name %s, got %q)", name, svc, got[name]))
					}
				}
				return len(missing) == 0
			})
		})
	}
}
