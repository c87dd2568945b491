package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// Bounds of GET /api/v1/services/{name}/logs?lines=N: N lines from 0 to
// MaxLogLines, what the ring keeps at most, DefaultLogLines when not given.
const (
	MaxLogLines     = logging.DefaultRingLines
	DefaultLogLines = 100
)

// Logs is where the control API reads each service's recent lines: the
// process's logging.Ring.
type Logs interface {
	// Services lists the services that have lines.
	Services() []string
	Tail(service string, n int) (lines []string, next uint64, ok bool)
	Since(service string, seq uint64) (lines []string, next uint64, changed <-chan struct{})
}

// LogsRequest asks for a service's last Lines lines and, with Follow, for
// every line after them until the caller goes away.
type LogsRequest struct {
	Name   string
	Lines  int
	Follow bool
}

// HandlerOption adds routes to the control API's handler.
type HandlerOption func(r *transport.Router, logger log.Logger)

// WithLogs serves GET /api/v1/services/{name}/logs from logs. Followers
// end when stop is closed, so a follow never holds up the runtime's
// shutdown.
func WithLogs(logs Logs, stop <-chan struct{}) HandlerOption {
	return func(r *transport.Router, logger log.Logger) {
		r.HandleHTTP("GET /api/v1/services/{name}/logs", logsHandler(logs, stop, logger))
	}
}

// logsHandler answers text, one log line per line, as the logger wrote
// them (logfmt or JSON); a follow flushes each line as it comes. Errors
// before the first line are the usual JSON.
func logsHandler(logs Logs, stop <-chan struct{}, logger log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := parseLogsRequest(r)
		if err != nil {
			transport.WriteError(logger, w, err)
			return
		}
		lines, next, ok := logs.Tail(req.Name, req.Lines)
		if !ok {
			transport.WriteError(logger, w, fmt.Errorf("%w %q; known services: %s",
				supervisor.ErrUnknownService, req.Name, strings.Join(logs.Services(), ", ")))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		flusher, _ := w.(http.Flusher)
		write := func(lines []string) bool {
			for _, l := range lines {
				if _, err := io.WriteString(w, l+"\n"); err != nil {
					return false
				}
			}
			if flusher != nil {
				flusher.Flush()
			}
			return true
		}
		if !write(lines) || !req.Follow {
			return
		}
		for {
			lines, n, changed := logs.Since(req.Name, next)
			next = n
			if len(lines) > 0 && !write(lines) {
				return
			}
			select {
			case <-changed:
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	})
}

func parseLogsRequest(r *http.Request) (LogsRequest, error) {
	req := LogsRequest{Name: r.PathValue("name"), Lines: DefaultLogLines}
	// A query that does not parse is refused, not read as no query.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, fmt.Errorf("%w: query: %v", apierr.ErrInvalidArgument, err)
	}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxLogLines {
			return req, fmt.Errorf("%w: lines must be a whole number from 0 to %d, got %q", apierr.ErrInvalidArgument, MaxLogLines, v)
		}
		req.Lines = n
	}
	switch v := q.Get("follow"); v {
	case "", "0", "false":
	case "1", "true":
		req.Follow = true
	default:
		return req, fmt.Errorf("%w: follow must be 1 or 0, got %q", apierr.ErrInvalidArgument, v)
	}
	return req, nil
}

// Logs writes service req.Name's recent lines to out and, with
// req.Follow, every new line until ctx is done. A follow is not bounded
// by the client's whole-call timeout.
func (c *Client) Logs(ctx context.Context, req LogsRequest, out io.Writer) error {
	u := *c.base
	u.Path = "/api/v1/services/" + req.Name + "/logs"
	u.RawPath = "/api/v1/services/" + url.PathEscape(req.Name) + "/logs"
	q := url.Values{"lines": {strconv.Itoa(req.Lines)}}
	if req.Follow {
		q.Set("follow", "1")
	}
	u.RawQuery = q.Encode()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: build request: %v", apierr.ErrInvalidArgument, err)
	}
	hr.Header.Set("Authorization", "Bearer "+c.token)
	hc := c.hc
	if req.Follow {
		follow := *hc
		follow.Timeout = 0
		hc = &follow
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", apierr.ErrUnavailable, c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return transport.ReadError(resp)
	}
	_, err = io.Copy(out, resp.Body)
	if err != nil && ctx.Err() != nil {
		return nil // the caller stopped following
	}
	return err
}
