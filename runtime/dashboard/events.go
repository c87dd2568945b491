package dashboard

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log/level"
)

// How often an open page gets fresh request rates. State changes do not
// wait for it: they are pushed as they happen.
const trafficEvery = 5 * time.Second

// keepAlive is how often a quiet stream sends a comment, so that proxies
// and the browser see a live connection.
const keepAlive = 25 * time.Second

// events is GET /ui/events, the page's Server-Sent Events stream: an
// event "grid" carrying the rendered table whenever it changes. A state
// change of this node's services (the supervisor's change channel) or
// of another node's record (the registry watcher) renders it again at
// once; the request rates, which change all the time, are read again
// every trafficEvery. A render that equals the last one sent is not sent.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, sess session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// The listener's read timeout would end the stream after ten
	// seconds; a stream reads nothing, so it needs none.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	var remote <-chan struct{}
	if d.opts.Subscribe != nil {
		ch, cancel := d.opts.Subscribe()
		defer cancel()
		remote = ch
	}
	traffic := time.NewTicker(trafficEvery)
	defer traffic.Stop()
	alive := time.NewTicker(keepAlive)
	defer alive.Stop()
	ctx := r.Context()
	var last []byte
	for {
		// Taken before the listing, so a change during it is not missed.
		local := d.opts.Changed()
		var buf bytes.Buffer
		v := view{Grid: d.build(ctx), CSRF: sess.csrf, Version: d.opts.Version}
		if err := d.pages().ExecuteTemplate(&buf, "grid", v); err != nil {
			level.Error(d.opts.Logger).Log("msg", "render dashboard grid", "err", err)
			return
		}
		if !bytes.Equal(buf.Bytes(), last) {
			last = buf.Bytes()
			if err := writeEvent(w, "grid", last); err != nil {
				return
			}
			flusher.Flush()
		}
		select {
		case <-local:
		case <-remote:
		case <-traffic.C:
		case <-alive.C:
			if _, err := w.Write([]byte(": alive\n\n")); err != nil {
				return
			}
			flusher.Flush()
		case <-ctx.Done():
			return
		case <-d.opts.Stop:
			return
		}
	}
}

// writeEvent writes one event, each line of data on a data: line of its
// own as the format wants.
func writeEvent(w http.ResponseWriter, name string, data []byte) error {
	var b strings.Builder
	b.WriteString("event: " + name + "\n")
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString("data: ")
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write([]byte(b.String()))
	return err
}
