package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

// Targets of issue 8 for small GETs.
const (
	// colocatedTarget is proxy/direct in one `ocis server`, where the
	// proxy hands each request to the storage handler in its process.
	colocatedTarget = 0.85
	// networkedTarget is proxy/nginx with the proxy and the storage in
	// separate processes, nginx in front of the same storage.
	networkedTarget = 0.8
	// rssTarget bounds the proxy's resident memory at 1000 connections,
	// in MB.
	rssTarget = 150
)

// smallPath is the file the small GETs fetch; smallSize its length.
const (
	smallPath = "bench/small.bin"
	smallSize = 1 << 10
)

// filesPrefix is where the storage routes begin.
const filesPrefix = "/api/v1/files/"

// colocated measures small GETs in one `ocis server`: from the storage
// service's own listener (direct) and through the proxy's, which hands the
// request to the storage handler in the same process. Both runs are charged
// the CPU of the one process.
func (b *bench) colocated(ctx context.Context, srv *ocisServer) ([]string, error) {
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	token, err := login(ctx, hc, srv.url(usersName))
	if err != nil {
		return nil, err
	}
	// Through the proxy, as a user's files arrive: the first write places
	// the user on a storage node, and the proxy's placement lookups of a
	// placed user are answered from memory (docs/distribution.md).
	if err := uploadSmall(ctx, hc, srv.url(proxy.Name), token); err != nil {
		return nil, err
	}
	pid := []int{srv.ch.Pid()}
	direct := &target{name: "direct", url: srv.url(storage.Name) + filesPrefix + smallPath, groups: pid}
	prox := &target{name: "ocis proxy", url: srv.url(proxy.Name) + filesPrefix + smallPath, groups: pid}
	for _, t := range []*target{direct, prox} {
		if err := checkGET(ctx, hc, t.url, token, smallContent()); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	fmt.Fprintf(b.out, "colocated small GETs: one `ocis server` process (proxy hands requests to the storage handler in-process); %d-byte file, wrk -t%d -c%d -d%s, %d round(s) interleaved; CPU is the ocis process's\n",
		smallSize, b.cfg.threads, b.cfg.conns, b.cfg.duration, b.cfg.rounds)
	if b.cfg.pprofDir != "" {
		// One process holds the proxy and the storage: its profile,
		// fetched from the proxy's debug address, covers both.
		for _, t := range []*target{direct, prox} {
			if err := b.profile(ctx, srv.addrs.debug[proxy.Name], token, &target{name: "colocated " + t.name, url: t.url, groups: t.groups}); err != nil {
				return nil, err
			}
		}
	}
	if err := b.interleave(ctx, token, b.cfg.conns, direct, prox); err != nil {
		return nil, err
	}
	rps := benchkit.SpreadOf(ratios(prox.rps(), direct.rps()))
	cpu := benchkit.SpreadOf(ratios(prox.cpu(), direct.cpu()))
	tg := benchkit.Target{Value: colocatedTarget}
	lines := []string{
		fmt.Sprintf("colocated small GETs: direct %s req/s, proxy %s req/s", benchkit.SpreadOf(direct.rps()).Format("%.0f"), benchkit.SpreadOf(prox.rps()).Format("%.0f")),
		fmt.Sprintf("colocated small GETs: CPU per request µs: direct %s, proxy %s; proxy/direct %s (no target)",
			benchkit.SpreadOf(direct.cpu()).Format("%.1f"), benchkit.SpreadOf(prox.cpu()).Format("%.1f"), cpu.Format("%.2f")),
		fmt.Sprintf("colocated small GETs: proxy/direct req/s %s; %s", rps.Format("%.2f"), tg.Judge(rps)),
	}
	for _, l := range lines {
		fmt.Fprintln(b.out, l)
	}
	return lines, nil
}

// uploadSmall stores the 1 KiB file of the small GETs.
func uploadSmall(ctx context.Context, hc *http.Client, storageURL, token string) error {
	sc, err := storage.NewClient(storageURL, hc)
	if err != nil {
		return err
	}
	body := smallContent()
	if _, _, err := sc.Upload(withToken(ctx, token), smallPath, bytes.NewReader(body), int64(len(body)), storage.UploadOptions{}); err != nil {
		return fmt.Errorf("upload %s: %w", smallPath, err)
	}
	return nil
}

// checkGET fetches url once as the holder of token and wants a 200 with
// body, before wrk is trusted with the target.
func checkGET(ctx context.Context, hc *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200: %s", url, resp.StatusCode, strings.TrimSpace(string(got)))
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("GET %s: body of %d bytes differs from the %d uploaded", url, len(got), len(body))
	}
	return nil
}

// smallContent is the 1 KiB file: printable and the same on every run.
func smallContent() []byte {
	b := make([]byte, smallSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
