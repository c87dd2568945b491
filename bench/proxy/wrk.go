package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	rps      float64
	p99      time.Duration
	requests int64
	// non2xx counts "Non-2xx or 3xx responses"; any is a failed run.
	non2xx int64
	// socketErrors is wrk's "Socket errors" line, empty when it printed
	// none.
	socketErrors string
}

// wrk runs wrk against url for the configured duration, threads and
// connections, with the bearer token, and parses its report.
func (b *bench) wrk(ctx context.Context, url, token string, d time.Duration) (wrkResult, error) {
	argv := []string{"wrk",
		"-t", strconv.Itoa(b.cfg.threads),
		"-c", strconv.Itoa(b.cfg.conns),
		"-d", strconv.Itoa(int(d/time.Second)) + "s",
		"--latency",
		"-H", "Authorization: Bearer " + token,
		url,
	}
	_, out, err := b.kids.Run(ctx, "wrk", d+30*time.Second, b.env, argv...)
	if err != nil {
		return wrkResult{}, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w; output:\n%s", url, err, out)
	}
	if r.non2xx > 0 {
		return r, fmt.Errorf("wrk %s: %d of %d responses were not 2xx or 3xx", url, r.non2xx, r.requests)
	}
	return r, nil
}

// parseWrk reads wrk's report: "Requests/sec:", the "99%" line of
// --latency, the request count, and the error lines.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
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
			r.rps, haveRPS = v, true
		case strings.HasPrefix(line, "99%") && len(fields) == 2:
			v, err := parseWrkDuration(fields[1])
			if err != nil {
				return r, fmt.Errorf("99%% latency: %w", err)
			}
			r.p99, haveP99 = v, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(fields) == 5:
			v, err := strconv.ParseInt(fields[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("non-2xx count %q: %w", fields[4], err)
			}
			r.non2xx = v
		case strings.HasPrefix(line, "Socket errors:"):
			r.socketErrors = strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
		case len(fields) >= 3 && fields[1] == "requests" && fields[2] == "in":
			v, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("request count %q: %w", fields[0], err)
			}
			r.requests, haveCount = v, true
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
