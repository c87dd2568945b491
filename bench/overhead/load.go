package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured round of one side.
type result struct {
	requests int64
	elapsed  time.Duration
	p99      time.Duration
}

func (r result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load drives url with workers concurrent keep-alive callers for d. Each
// worker starts no new request after d and finishes the one it has in
// flight, so no request is cut off and counted as a failure. The first
// failed or wrong answer stops every worker and is returned.
func load(client *http.Client, url string, workers int, d time.Duration) (result, error) {
	var (
		wg       sync.WaitGroup
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		lats     = make([][]time.Duration, workers)
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		goLabelled("load", func() {
			defer wg.Done()
			lats[w] = make([]time.Duration, 0, 4096)
			for seq := int64(0); !failed.Load(); seq++ {
				begin := time.Now()
				if !begin.Before(deadline) {
					return
				}
				if err := call(client, url, w, seq); err != nil {
					fail(err)
					return
				}
				lats[w] = append(lats[w], time.Since(begin))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return result{}, firstErr
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request completed against %s in %s", url, d)
	}
	slices.Sort(all)
	return result{
		requests: int64(len(all)),
		elapsed:  elapsed,
		p99:      all[(len(all)*99)/100],
	}, nil
}

// call sends one echo request and checks the answer: status 200 and the
// same message and sequence number back.
func call(client *http.Client, url string, worker int, seq int64) error {
	want := EchoRequest{Message: "hello from worker " + strconv.Itoa(worker), Seq: seq}
	// Marshal, not an Encoder, so the body carries no trailing newline:
	// that is what the project's own clients (transport.ClientRoute) send.
	b, err := json.Marshal(want)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	// Read to the end so the connection goes back to the pool.
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %.200s", url, resp.Status, raw)
	}
	var got EchoResponse
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("POST %s: decode answer %.200q: %w", url, raw, err)
	}
	if got.Message != want.Message || got.Seq != want.Seq || got.Length != len(want.Message) {
		return fmt.Errorf("POST %s: got %+v, want the echo of %+v", url, got, want)
	}
	return nil
}
