package transport_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestClientAddr(t *testing.T) {
	trusted := transport.DefaultTrustedProxies()
	for _, tc := range []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{name: "direct client", remote: "192.0.2.7:5000", want: "192.0.2.7"},
		{name: "untrusted peer's header is ignored", remote: "192.0.2.7:5000", xff: []string{"198.51.100.1"}, want: "192.0.2.7"},
		{name: "trusted proxy without a header", remote: "127.0.0.1:5000", want: "127.0.0.1"},
		{name: "trusted proxy names the client", remote: "127.0.0.1:5000", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "only the last entry counts", remote: "127.0.0.1:5000", xff: []string{"203.0.113.9, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "last of several headers", remote: "[::1]:5000", xff: []string{"203.0.113.9", "198.51.100.2"}, want: "198.51.100.2"},
		{name: "garbage falls back to the peer", remote: "127.0.0.1:5000", xff: []string{"not an address"}, want: "127.0.0.1"},
		{name: "v4 in v6 is unmapped", remote: "[::ffff:192.0.2.7]:5000", want: "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/tokens", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := transport.ClientAddr(r, trusted); got != tc.want {
				t.Errorf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "10.1.2.3:4"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := transport.ClientAddr(r, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); got != "198.51.100.1" {
		t.Errorf("configured proxy range: ClientAddr = %q, want the forwarded client", got)
	}
}
