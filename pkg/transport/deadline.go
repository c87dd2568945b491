package transport

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultUploadIdle is how long an authenticated upload may go without a
// byte arriving once IdleBody replaced the body timeout.
const DefaultUploadIdle = 2 * time.Minute

// IdleBody replaces the read deadline of w's connection, which bounds the
// whole request (BodyTimeout), with an idle deadline that moves with every
// read: an upload may take as long as it needs while bytes keep arriving.
// The first move happens at the first read, so wrapping a body costs
// nothing until it is read. Call it only for a request already
// authenticated: an anonymous sender must never hold a connection past the
// body timeout.
func IdleBody(w http.ResponseWriter, body io.ReadCloser, idle time.Duration) io.ReadCloser {
	return &idleBody{ReadCloser: body, rc: http.NewResponseController(w), idle: idle}
}

type idleBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	deadline time.Time
}

func (b *idleBody) Read(p []byte) (int, error) {
	// Moving the deadline at most once per half period keeps it off the
	// path of every read.
	if now := time.Now(); b.deadline.Sub(now) < b.idle/2 {
		b.deadline = now.Add(b.idle)
		_ = b.rc.SetReadDeadline(b.deadline)
	}
	return b.ReadCloser.Read(p)
}

// TimedOut reports whether err is a read that hit its connection's
// deadline: a request body that did not arrive within the body timeout or
// an idle upload.
func TimedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
