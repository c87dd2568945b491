package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// NewLogin asks the runtime at addr ("127.0.0.1:9250"), authenticated by
// its token, for a one-time login code, and returns it with the URL to
// open: the address the caller reached the runtime at, which is the one
// that works from where the caller runs. A nil hc means a client of its
// own with a timeout.
func NewLogin(ctx context.Context, addr, token string, hc *http.Client) (Login, string, error) {
	base, err := url.Parse("http://" + addr)
	if err != nil {
		return Login{}, "", fmt.Errorf("parse runtime address %q: %w", addr, err)
	}
	if hc == nil {
		hc = transport.NewHTTPClient(15 * time.Second)
	}
	l, err := endpoint.Call[endpoint.Empty, Login](transport.WithBearer(ctx, token), loginRoute.Client(hc, base), endpoint.Empty{})
	if err != nil {
		return Login{}, "", err
	}
	u, err := base.Parse(l.Path)
	if err != nil {
		return Login{}, "", fmt.Errorf("parse login path %q: %w", l.Path, err)
	}
	return l, u.String(), nil
}
