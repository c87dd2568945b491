package benchkit

import (
	"testing"

	"github.com/ocis-runtime/ocis/services"
)

func TestPrimaryAddrFlag(t *testing.T) {
	want := map[string]string{"nats": "addr", "users": "http-addr", "storage": "http-addr", "proxy": "http-addr"}
	for _, d := range services.Catalogue() {
		w, ok := want[d.Name]
		if !ok {
			w = "http-addr"
		}
		if got := PrimaryAddrFlag(d); got != w {
			t.Errorf("PrimaryAddrFlag(%s) = %q, want %q", d.Name, got, w)
		}
	}
}
