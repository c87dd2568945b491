package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// syscallSeconds is the length of the run whose system calls are counted.
const syscallSeconds = 3

// syscallEvents are the system calls counted one by one; "all" counts every
// one. The forwarders differ in which calls they use for the same work
// (nginx: recvfrom, writev, epoll_wait; Go: read, write, epoll_pwait), so
// each is printed when it occurred.
var syscallEvents = []struct{ name, event string }{
	{"all", "raw_syscalls:sys_enter"},
	{"read", "syscalls:sys_enter_read"},
	{"recvfrom", "syscalls:sys_enter_recvfrom"},
	{"write", "syscalls:sys_enter_write"},
	{"writev", "syscalls:sys_enter_writev"},
	{"sendfile", "syscalls:sys_enter_sendfile64"},
	{"epoll_wait", "syscalls:sys_enter_epoll_wait"},
	{"epoll_pwait", "syscalls:sys_enter_epoll_pwait"},
	{"epoll_ctl", "syscalls:sys_enter_epoll_ctl"},
	{"futex", "syscalls:sys_enter_futex"},
	{"nanosleep", "syscalls:sys_enter_nanosleep"},
	{"getrandom", "syscalls:sys_enter_getrandom"},
	{"setsockopt", "syscalls:sys_enter_setsockopt"},
}

// countSyscalls counts the system calls of t's processes per request with
// `perf stat` during an extra wrk run of syscallSeconds, outside the
// measured rounds (tracepoints cost little, unlike strace, but the run is
// not counted all the same), and prints them.
func (b *bench) countSyscalls(ctx context.Context, token string, t *target) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("-syscalls needs perf (Debian: linux-perf): %w", err)
	}
	var pids []string
	for _, g := range t.groups {
		ps, err := groupPids(g)
		if err != nil {
			return err
		}
		pids = append(pids, ps...)
	}
	events := make([]string, len(syscallEvents))
	for i, e := range syscallEvents {
		events[i] = e.event
	}
	out := filepath.Join(b.tmp, "perf-"+strings.NewReplacer(" ", "-", "/", "-").Replace(t.name)+".csv")
	d := syscallSeconds * time.Second
	perfDone := make(chan error, 1)
	go func() {
		// perf counts the processes for as long as its own command runs:
		// a second longer than wrk on either side, so that the calls of
		// every request wrk counts are in, whenever perf is ready. An
		// idle forwarder makes a few calls a second, next to thousands.
		_, _, err := b.kids.Run(ctx, "perf stat", d+10*time.Second, b.env, perf, "stat", "-x", ",", "-o", out,
			"-e", strings.Join(events, ","), "-p", strings.Join(pids, ","), "--", "sleep", strconv.Itoa(syscallSeconds+2))
		perfDone <- err
	}()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		<-perfDone
		return ctx.Err()
	}
	r, _, werr := b.wrk(ctx, t, token, b.cfg.conns, d)
	if err := <-perfDone; err != nil {
		return fmt.Errorf("perf stat on %s: %w", t.name, err)
	}
	if werr != nil {
		return fmt.Errorf("syscalls of %s: %w", t.name, werr)
	}
	counts, err := readPerfCSV(out)
	if err != nil {
		return err
	}
	var line strings.Builder
	for _, e := range syscallEvents {
		n, ok := counts[e.event]
		if !ok || (n == 0 && e.name != "all") {
			continue
		}
		fmt.Fprintf(&line, " %s %.2f", e.name, n/float64(r.Requests))
	}
	fmt.Fprintf(b.out, "  syscalls per request %-20s%s (%.0f req/s, not counted)\n", t.name, line.String(), r.RPS)
	return nil
}

// readPerfCSV reads `perf stat -x ,` output: count and event per line.
func readPerfCSV(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		n, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue // "<not counted>", "<not supported>"
		}
		counts[fields[2]] = n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("%s holds no counts", path)
	}
	return counts, nil
}

// groupPids lists the processes of process group pgid (nginx's master and
// workers), for perf, which takes pids.
func groupPids(pgid int) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// The fields after the command name, which is in parentheses
		// and may hold spaces: state, ppid, pgrp.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			pids = append(pids, e.Name())
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process in group %d", pgid)
	}
	return pids, nil
}
