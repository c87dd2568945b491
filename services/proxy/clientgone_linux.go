package proxy

import (
	"errors"
	"net"
	"syscall"
)

// clientGone reports whether the client of conn closed its connection,
// without reading from it: fasthttp runs no background read during a
// request, as net/http does to cancel a request's context, so the direct
// path looks when an answer keeps it waiting. A peek that finds the end of
// the stream, or an error other than "nothing yet", is a client gone;
// bytes waiting (a pipelined request) are not.
func clientGone(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	// Control, not Read: Read would wait for the connection's read lock,
	// which a body read holds, and fail at once past the read deadline
	// fasthttp set at the request's start and never clears during it;
	// the peek needs neither.
	err = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			gone = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			gone = true
		}
	})
	return gone || (err != nil && errors.Is(err, net.ErrClosed))
}
