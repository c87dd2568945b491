package transport

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultTrustedProxies are the peers whose X-Forwarded-For is believed by
// default: this machine only, where the family's own proxy runs.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// ClientAddr returns the address of the client a request comes from: the
// peer itself, or, when the peer is a trusted proxy, the last address that
// proxy appended to X-Forwarded-For (the family's proxy replaces whatever
// the client sent, so the last entry is the one it saw). Entries further
// left were written by the client and are never believed.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer := remoteIP(r.RemoteAddr)
	if !peer.IsValid() || !contains(trusted, peer) {
		if peer.IsValid() {
			return peer.String()
		}
		return r.RemoteAddr
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return peer.String()
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	if ip, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
		return ip.Unmap().String()
	}
	return peer.String()
}

func remoteIP(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func contains(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
