package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what one wrk run reports, with the CPU time the servers
// under load spent on it.
type WrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	// Non2xx counts "Non-2xx or 3xx responses"; any is a failed run.
	Non2xx int64
	// SocketErrors is wrk's "Socket errors" line, empty when it printed
	// none.
	SocketErrors string
	// CPU is the user and system time of the measured process groups
	// over the run; zero when none was given.
	CPU time.Duration
}

// CPUPerRequest is the servers' CPU time per request served.
func (r WrkResult) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// Load is one wrk run: wrk, an external load generator in its own
// process, against URL, while the CPU time of the server processes in
// Groups is taken before and after.
type Load struct {
	URL      string
	Threads  int
	Conns    int
	Duration time.Duration // whole seconds
	Headers  []string      // "Name: value"
	// Script is the path of a Lua script for wrk's -s (a POST with a
	// body, say); empty for plain GETs.
	Script string
	// Groups are the process groups whose CPU time the run is charged
	// with (Child.Pid of each server).
	Groups []int
}

// Wrk runs l with kids and env and parses wrk's report. A run with any
// answer that is not 2xx or 3xx is an error.
func Wrk(ctx context.Context, kids *Children, env []string, l Load) (WrkResult, error) {
	argv := []string{"wrk",
		"-t", strconv.Itoa(l.Threads),
		"-c", strconv.Itoa(l.Conns),
		"-d", strconv.Itoa(int(l.Duration/time.Second)) + "s",
		"--latency",
	}
	for _, h := range l.Headers {
		argv = append(argv, "-H", h)
	}
	if l.Script != "" {
		argv = append(argv, "-s", l.Script)
	}
	argv = append(argv, l.URL)
	before, err := groupsCPU(l.Groups)
	if err != nil {
		return WrkResult{}, err
	}
	_, out, err := kids.Run(ctx, "wrk", l.Duration+30*time.Second, env, argv...)
	if err != nil {
		return WrkResult{}, err
	}
	after, err := groupsCPU(l.Groups)
	if err != nil {
		return WrkResult{}, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk %s: %w; output:\n%s", l.URL, err, out)
	}
	r.CPU = after - before
	if r.Non2xx > 0 {
		return r, fmt.Errorf("wrk %s: %d of %d responses were not 2xx or 3xx", l.URL, r.Non2xx, r.Requests)
	}
	return r, nil
}

func groupsCPU(groups []int) (time.Duration, error) {
	var total time.Duration
	for _, g := range groups {
		t, err := GroupCPU(g)
		if err != nil {
			return 0, err
		}
		total += t
	}
	return total, nil
}

// SocketNote is a warning for a run in which wrk saw socket errors.
func (r WrkResult) SocketNote() string {
	if r.SocketErrors == "" {
		return ""
	}
	return " (wrk socket errors: " + r.SocketErrors + ")"
}

// EnsureDebian installs the Debian packages pkgs with apt-get unless every
// binary in bins is already found (in PATH or /usr/sbin); apt-get update
// runs first when the install fails, as on a fresh container.
func EnsureDebian(ctx context.Context, log io.Writer, bins, pkgs []string) error {
	missing := func() []string {
		var out []string
		for _, b := range bins {
			if LookTool(b) == "" {
				out = append(out, b)
			}
		}
		return out
	}
	if len(missing()) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s missing and installing needs root: apt-get install -y %s", strings.Join(missing(), ", "), strings.Join(pkgs, " "))
	}
	install := func() ([]byte, error) {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ictx, "apt-get", append([]string{"install", "-y"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	fmt.Fprintf(log, "installing %s with apt-get\n", strings.Join(pkgs, " "))
	if out, err := install(); err != nil {
		fmt.Fprintf(log, "apt-get install failed (%v), running apt-get update first\n", err)
		uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if uout, uerr := exec.CommandContext(uctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s\n(install output:\n%s)", uerr, uout, out)
		}
		if out, err := install(); err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(pkgs, " "), err, out)
		}
	}
	if m := missing(); len(m) > 0 {
		return fmt.Errorf("apt-get installed %s, but %s still not found", strings.Join(pkgs, " "), strings.Join(m, ", "))
	}
	return nil
}

// LookTool finds a program in PATH or in /usr/sbin, which is not in every
// user's PATH (nginx lives there); empty when it is in neither.
func LookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p
	}
	return ""
}

// parseWrk reads wrk's report: "Requests/sec:", the "99%" line of
// --latency, the request count, and the error lines.
func parseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveRPS, haveP99, haveCount bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(fields) == 2:
			v, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return r, fmt.Errorf("requests/sec %q: %w", fields[1], err)
			}
			r.RPS, haveRPS = v, true
		case strings.HasPrefix(line, "50%") && len(fields) == 2:
			v, err := parseWrkDuration(fields[1])
			if err != nil {
				return r, fmt.Errorf("50%% latency: %w", err)
			}
			r.P50 = v
		case strings.HasPrefix(line, "99%") && len(fields) == 2:
			v, err := parseWrkDuration(fields[1])
			if err != nil {
				return r, fmt.Errorf("99%% latency: %w", err)
			}
			r.P99, haveP99 = v, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(fields) == 5:
			v, err := strconv.ParseInt(fields[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("non-2xx count %q: %w", fields[4], err)
			}
			r.Non2xx = v
		case strings.HasPrefix(line, "Socket errors:"):
			r.SocketErrors = strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
		case len(fields) >= 3 && fields[1] == "requests" && fields[2] == "in":
			v, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("request count %q: %w", fields[0], err)
			}
			r.Requests, haveCount = v, true
		}
	}
	switch {
	case !haveRPS:
		return r, errors.New(`no "Requests/sec:" line`)
	case !haveP99:
		return r, errors.New(`no "99%" latency line (was --latency given?)`)
	case !haveCount:
		return r, errors.New(`no "N requests in" line`)
	}
	return r, nil
}

// parseWrkDuration reads wrk's latency format: a number with the unit us,
// ms, s, m or h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{
		// "us" and "ms" before "s", which they end with.
		{"us", time.Microsecond},
		{"ms", time.Millisecond},
		{"s", time.Second},
		{"m", time.Minute},
		{"h", time.Hour},
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("latency %q: not a number of %s", s, u.suffix)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("latency %q: unknown unit", s)
}
