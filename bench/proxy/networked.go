package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

// rssConns is the connection count of the memory figure.
const rssConns = 1000

// networked measures small GETs with the proxy and the storage in separate
// processes (`ocis proxy server`, `ocis storage server`, and `ocis users
// server` for the login), against nginx in front of the same storage
// process. The proxy's and nginx's runs are charged their own CPU only
// (nginx: master and workers), the forwarding cost; the storage's is the
// same work behind both. Then both face 1000 connections while their
// resident memory is sampled.
func (b *bench) networked(ctx context.Context) ([]string, error) {
	addrs, err := newOcisAddrs()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(b.tmp, "net")
	var procs []*ocisServer
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(); err != nil {
				fmt.Fprintln(b.log, err)
			}
		}
	}()
	for _, name := range []string{usersName, storage.Name, proxy.Name} {
		p, err := b.startService(ctx, name, data, addrs, "warn", b.cfg.pprofDir != "")
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	stor, prox := procs[1], procs[2]

	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	token, err := login(ctx, hc, prox.url(usersName))
	if err != nil {
		return nil, err
	}
	if err := uploadSmall(ctx, hc, prox.url(storage.Name), token); err != nil {
		return nil, err
	}
	free, err := benchkit.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	nginx, err := b.startNginx(free[0], addrs.http[storage.Name])
	if err != nil {
		return nil, err
	}
	defer func() {
		// SIGQUIT is nginx's graceful stop; the group is killed after it
		// in any case.
		_, _ = nginx.Stop(syscall.SIGQUIT, 10*time.Second)
	}()
	auth := http.Header{"Authorization": {"Bearer " + token}}
	if err := benchkit.AwaitStatus(ctx, hc, "http://"+free[0]+filesPrefix+smallPath, auth, http.StatusOK, 20*time.Millisecond, 10*time.Second, nginx.Done()); err != nil {
		return nil, fmt.Errorf("nginx: %w; output:\n%s\nerror.log:\n%s", err, nginx.Output(), benchkit.FileTail(filepath.Join(b.tmp, "nginx", "error.log")))
	}

	path := filesPrefix + smallPath
	direct := &target{name: "direct to storage", url: stor.url(storage.Name) + path, groups: []int{stor.ch.Pid()}}
	viaProxy := &target{name: "ocis proxy server", url: prox.url(proxy.Name) + path, groups: []int{prox.ch.Pid()},
		metrics: "http://" + addrs.debug[proxy.Name] + "/metrics"}
	viaNginx := &target{name: "nginx", url: "http://" + free[0] + path, groups: []int{nginx.Pid()}}
	targets := []*target{direct, viaProxy, viaNginx}
	var viaNet, viaGC *target
	if b.cfg.netHTTPPlane {
		// `ocis proxy server` serves on fasthttp; the same proxy on the
		// net/http plane, measured in the same rounds, is what that
		// plane wins against.
		p, t, err := b.secondProxy(ctx, data, addrs, path, "proxy on net/http", "OCIS_PROXY_DATA_PLANE="+proxy.PlaneNetHTTP)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		viaNet = t
		targets = append(targets, viaNet)
	}
	if b.cfg.proxyGOGC > 0 {
		// A second proxy beside the first, the same in everything but
		// its collector's pace, so the two are measured in the same
		// rounds.
		p, t, err := b.secondProxy(ctx, data, addrs, path, fmt.Sprintf("proxy GOGC=%d", b.cfg.proxyGOGC), fmt.Sprintf("GOGC=%d", b.cfg.proxyGOGC))
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		viaGC = t
		targets = append(targets, viaGC)
	}
	for _, t := range targets {
		if err := checkGET(ctx, hc, t.url, token, smallContent()); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	fmt.Fprintf(b.out, "networked small GETs: proxy, storage and users each their own process, nginx (%d workers) in front of the same storage; %d-byte file, wrk -t%d -c%d -d%s, %d round(s) interleaved; CPU is the forwarder's own (direct: the storage's)\n",
		b.cfg.nginxWorkers, smallSize, b.cfg.threads, b.cfg.conns, b.cfg.duration, b.cfg.rounds)
	if b.cfg.pprofDir != "" {
		if err := b.profile(ctx, prox.addrs.debug[proxy.Name], token, viaProxy); err != nil {
			return nil, err
		}
	}
	if b.cfg.syscalls {
		for _, t := range targets[1:] {
			if err := b.countSyscalls(ctx, token, t); err != nil {
				return nil, err
			}
		}
	}
	if err := b.interleave(ctx, token, b.cfg.conns, targets...); err != nil {
		return nil, err
	}
	rps := benchkit.SpreadOf(ratios(viaProxy.rps(), viaNginx.rps()))
	cpu := benchkit.SpreadOf(ratios(viaProxy.cpu(), viaNginx.cpu()))
	tg := benchkit.Target{Value: networkedTarget}
	lines := []string{
		fmt.Sprintf("networked small GETs: direct %s req/s, proxy %s req/s, nginx %s req/s",
			benchkit.SpreadOf(direct.rps()).Format("%.0f"), benchkit.SpreadOf(viaProxy.rps()).Format("%.0f"), benchkit.SpreadOf(viaNginx.rps()).Format("%.0f")),
		fmt.Sprintf("networked small GETs: forwarder CPU per request µs: proxy %s, nginx %s; proxy/nginx %s (no target)",
			benchkit.SpreadOf(viaProxy.cpu()).Format("%.1f"), benchkit.SpreadOf(viaNginx.cpu()).Format("%.1f"), cpu.Format("%.2f")),
		fmt.Sprintf("networked small GETs: proxy allocations per request %s, bytes per request %s",
			benchkit.SpreadOf(viaProxy.allocs).Format("%.0f"), benchkit.SpreadOf(viaProxy.allocB).Format("%.0f")),
		fmt.Sprintf("networked small GETs: proxy/nginx req/s %s; %s", rps.Format("%.2f"), tg.Judge(rps)),
	}
	if viaNet != nil {
		lines = append(lines, fmt.Sprintf("networked small GETs: %s: CPU per request µs %s, req/s vs nginx %s, fasthttp plane/net/http plane req/s %s",
			viaNet.name, benchkit.SpreadOf(viaNet.cpu()).Format("%.1f"), benchkit.SpreadOf(ratios(viaNet.rps(), viaNginx.rps())).Format("%.2f"),
			benchkit.SpreadOf(ratios(viaProxy.rps(), viaNet.rps())).Format("%.2f")))
	}
	if viaGC != nil {
		lines = append(lines, fmt.Sprintf("networked small GETs: %s: CPU per request µs %s, req/s vs nginx %s",
			viaGC.name, benchkit.SpreadOf(viaGC.cpu()).Format("%.1f"), benchkit.SpreadOf(ratios(viaGC.rps(), viaNginx.rps())).Format("%.2f")))
	}
	for _, l := range lines {
		fmt.Fprintln(b.out, l)
	}
	if !b.cfg.wants("rss") {
		return lines, nil
	}

	// The same two forwarders at 1000 connections, with their memory
	// sampled; the proxy's process has served every run above too.
	bigProxy := &target{name: "ocis proxy server", url: viaProxy.url, groups: viaProxy.groups, rss: prox.ch.Pid()}
	bigNginx := &target{name: "nginx", url: viaNginx.url, groups: viaNginx.groups, rss: nginx.Pid()}
	fmt.Fprintf(b.out, "1000 connections: wrk -t%d -c%d -d%s against the networked proxy and nginx, %d round(s) interleaved; RSS sampled every 50ms (nginx: master and workers)\n",
		b.cfg.threads, rssConns, b.cfg.duration, b.cfg.rounds)
	if err := b.interleave(ctx, token, rssConns, bigProxy, bigNginx); err != nil {
		return nil, err
	}
	_, hwm, err := benchkit.GroupRSS(prox.ch.Pid())
	if err != nil {
		return nil, err
	}
	mem := benchkit.SpreadOf(bigProxy.peaks)
	mt := benchkit.Target{Value: rssTarget, AtMost: true, Verb: "%.0fMB"}
	big := benchkit.SpreadOf(ratios(bigProxy.rps(), bigNginx.rps()))
	keep := benchkit.SpreadOf(ratios(bigProxy.rps(), viaProxy.rps()))
	more := []string{
		fmt.Sprintf("1000 connections: proxy %s req/s, nginx %s req/s; proxy/nginx %s; proxy at 1000 / at %d connections %s",
			benchkit.SpreadOf(bigProxy.rps()).Format("%.0f"), benchkit.SpreadOf(bigNginx.rps()).Format("%.0f"), big.Format("%.2f"), b.cfg.conns, keep.Format("%.2f")),
		fmt.Sprintf("1000 connections: nginx RSS peak MB %s", benchkit.SpreadOf(bigNginx.peaks).Format("%.1f")),
		fmt.Sprintf("1000 connections: proxy RSS peak MB %s (VmHWM over the process's life %.1fMB); %s", mem.Format("%.1f"), float64(hwm)/1e6, mt.Judge(mem)),
	}
	for _, l := range more {
		fmt.Fprintln(b.out, l)
	}
	return append(lines, more...), nil
}

// secondProxy starts another `ocis proxy server` beside the first, on
// listeners of its own, with env added to its environment, and returns
// its process and its target for path.
func (b *bench) secondProxy(ctx context.Context, data string, addrs ocisAddrs, path, name string, env ...string) (*ocisServer, *target, error) {
	free, err := benchkit.FreeAddrs(2)
	if err != nil {
		return nil, nil, err
	}
	p, err := b.startService(ctx, proxy.Name, data, addrs.withListeners(proxy.Name, free[0], free[1]), "warn", false, env...)
	if err != nil {
		return nil, nil, err
	}
	return p, &target{name: name, url: p.url(proxy.Name) + path, groups: []int{p.ch.Pid()}, metrics: "http://" + free[1] + "/metrics"}, nil
}
