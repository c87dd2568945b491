package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadTally counts what a load generator's requests got.
type loadTally struct {
	mu sync.Mutex
	// ok counts 2xx answers; bad every other answer, by status and code.
	ok  int
	bad map[string]int
	// refused counts requests whose connection was refused (the
	// listener was closed) and unaccepted those whose fresh connection
	// was closed before any answer: it sat in the listener's backlog
	// when the listener closed, or its headers were complete only after
	// the stop began, and net/http hangs up on such a request without
	// handling it. Neither was accepted. broken counts every other
	// transport error, by message: a request the server may have
	// accepted and dropped.
	refused    int
	unaccepted int
	broken     map[string]int
}

func (l *loadTally) answer(resp *http.Response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if resp.StatusCode/100 == 2 {
		l.ok++
		return
	}
	var body wireError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	l.bad[fmt.Sprintf("%d %s", resp.StatusCode, body.Error.Reason)]++
}

// failure counts a request that got no answer; reused tells whether its
// last attempt went over a connection that had carried a request before.
// The transport retries a GET whose reused connection was closed under it
// on a fresh one, so the error seen here is the fresh connection's.
func (l *loadTally) failure(err error, reused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refused++
	case !reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		l.unaccepted++
	default:
		l.broken[err.Error()]++
	}
}

// TestSIGTERMUnderLoadAnswersEveryRequest sends SIGTERM to `ocis server`
// while 8 keep-alive clients GET authenticated routes of users and storage
// through the proxy. The proxy stops accepting first and the services
// behind it drain after it, so every request that got an answer got a 2xx,
// and the process exits 0. Refused connections (the proxy's listener is
// closed) are expected and counted apart.
//
// The load alone meets a stop in the wrong order only by chance, in a
// window of a millisecond between a request's headers being read and its
// route being looked up, so the test also reads the order from the
// runtime's log: the proxy has stopped before users or storage begins to.
func TestSIGTERMUnderLoadAnswersEveryRequest(t *testing.T) {
	e, p := startFamily(t)
	tok := bearerOf(t, e, e.proxyUsers())
	base := "http://" + e.vars["OCIS_PROXY_HTTP_ADDR"]
	paths := []string{"/api/v1/users/me", "/api/v1/files/"}
	const (
		workers = 8
		// warmup requests succeed before the signal, so it falls
		// under full load.
		warmup = 400
		// maxPerWorker and the deadline bound the test if the
		// process never stops.
		maxPerWorker = 20000
	)
	deadline := time.Now().Add(30 * time.Second)
	tally := &loadTally{bad: map[string]int{}, broken: map[string]int{}}
	var (
		answered atomic.Int64
		warm     = make(chan struct{})
		load     sync.WaitGroup
	)
	for i := range workers {
		load.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for range maxPerWorker {
				if time.Now().After(deadline) {
					return
				}
				req, err := http.NewRequest(http.MethodGet, base+paths[i%len(paths)], nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", tok)
				var reused bool
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
				}))
				resp, err := client.Do(req)
				if err != nil {
					tally.failure(err, reused)
					if errors.Is(err, syscall.ECONNREFUSED) {
						return // the listener is gone for good
					}
					continue
				}
				tally.answer(resp)
				resp.Body.Close()
				if answered.Add(1) == warmup {
					close(warm)
				}
			}
		})
	}
	select {
	case <-warm:
	case <-time.After(20 * time.Second):
		t.Fatalf("no %d answers within 20s: %d ok, bad %v, broken %v", warmup, tally.ok, tally.bad, tally.broken)
	}
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM under load = %d, want 0", code)
	}
	load.Wait()

	tally.mu.Lock()
	defer tally.mu.Unlock()
	t.Logf("%d answered 2xx, %d other answers %v; not accepted: %d refused, %d closed in the backlog; %d broken %v",
		tally.ok, countOf(tally.bad), tally.bad, tally.refused, tally.unaccepted, countOf(tally.broken), tally.broken)
	if len(tally.bad) > 0 {
		t.Errorf("answers other than 2xx during the shutdown: %v; want none", tally.bad)
	}
	if len(tally.broken) > 0 {
		t.Errorf("requests broken off during the shutdown: %v; want every accepted request answered", tally.broken)
	}
	if tally.refused+tally.unaccepted == 0 {
		t.Error("no client saw the proxy stop accepting")
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "runtime stopped") {
		t.Error("the runtime did not log its clean stop")
	}
	proxyStopped := strings.Index(logs, stateLine("proxy", "stopping", "stopped"))
	for _, name := range []string{"users", "storage"} {
		stopping := strings.Index(logs, stateLine(name, "running", "stopping"))
		if proxyStopped < 0 || stopping < 0 || stopping < proxyStopped {
			t.Errorf("%s began to stop at log offset %d, the proxy had stopped at %d; want the proxy first", name, stopping, proxyStopped)
		}
	}
}

// stateLine is the part of the supervisor's log line for a state change of
// service from one state to another.
func stateLine(service, from, to string) string {
	return fmt.Sprintf(`service=%s component=supervisor msg="state changed" from=%s to=%s`, service, from, to)
}

func countOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestProxyRunsWithoutWhatItFronts checks that fronting orders the stop
// only: with storage excluded the proxy starts, answers 503 for files, and
// the family still stops cleanly.
func TestProxyRunsWithoutWhatItFronts(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_EXCLUDE_RUN_SERVICES"] = "storage"
	p := e.start("server")
	waitHTTP(t, "http://"+e.vars["OCIS_RUNTIME_ADDR"]+"/readyz", http.StatusOK)
	tok := strings.TrimPrefix(bearerOf(t, e, e.proxyUsers()), "Bearer ")
	expectError(t, http.MethodGet, "http://"+e.vars["OCIS_PROXY_HTTP_ADDR"]+"/api/v1/files/", tok, "", http.StatusServiceUnavailable, "unavailable")
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}
