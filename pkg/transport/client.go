package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

type bearerKey struct{}

// WithBearer returns ctx carrying a token that client endpoints send as
// "Authorization: Bearer …".
func WithBearer(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, bearerKey{}, token)
}

// BearerFrom returns the token WithBearer put in ctx, for clients that build
// their own requests (streaming uploads and downloads).
func BearerFrom(ctx context.Context) (string, bool) {
	token, ok := ctx.Value(bearerKey{}).(string)
	return token, ok
}

// ClientRoute builds the caller's side of one route: an endpoint that sends a
// Req to base+path(req) and decodes a Resp, or the wire error. Requests of
// methods that carry a body are sent as JSON. Services declare a Route
// instead, whose Client does the same from the one declaration.
func ClientRoute[Req, Resp any](c *http.Client, base *url.URL, method string, path func(Req) string) endpoint.Endpoint {
	hasBody := method != http.MethodGet && method != http.MethodDelete && method != http.MethodHead
	return clientEndpoint[Req, Resp](c, base, method, hasBody, func(req Req) (*url.URL, error) {
		u, err := base.Parse(path(req))
		if err != nil {
			return nil, fmt.Errorf("%w: build url: %v", apierr.ErrInvalidArgument, err)
		}
		return u, nil
	})
}

// clientEndpoint is an endpoint that sends a Req to the URL target makes of
// it, as JSON when hasBody, and decodes a Resp or the wire error.
func clientEndpoint[Req, Resp any](c *http.Client, base *url.URL, method string, hasBody bool, target func(Req) (*url.URL, error)) endpoint.Endpoint {
	enc := func(ctx context.Context, r *http.Request, request any) error {
		req, ok := request.(Req)
		if !ok {
			return fmt.Errorf("%w: client wants %T, got %T", apierr.ErrInternal, req, request)
		}
		u, err := target(req)
		if err != nil {
			return err
		}
		r.URL = u
		r.Host = u.Host
		if token, ok := ctx.Value(bearerKey{}).(string); ok {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if !hasBody {
			return nil
		}
		body, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	dec := func(_ context.Context, resp *http.Response) (any, error) {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, ReadError(resp)
		}
		var out Resp
		if resp.StatusCode == http.StatusNoContent {
			return out, nil
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, fmt.Errorf("%w: decode answer of %s %s: %v", apierr.ErrInternal, method, resp.Request.URL.Path, err)
		}
		return out, nil
	}
	e := httptransport.NewClient(method, base, enc, dec, httptransport.SetClient(c)).Endpoint()
	return func(ctx context.Context, request any) (any, error) {
		response, err := e(ctx, request)
		var wireErr *apierr.Error
		if err != nil && !errors.As(err, &wireErr) {
			// The peer was not reached or the answer broke off: to the
			// caller that is the service being unavailable.
			err = fmt.Errorf("%w: %s %s: %w", apierr.ErrUnavailable, method, base.Host, err)
		}
		return response, err
	}
}

// PathEscape escapes one path segment; a shorthand for clients.
func PathEscape(s string) string { return url.PathEscape(s) }

// NewHTTPClient returns the client one service calls another with: pooled
// keep-alive connections, a bound on dialling and on waiting for the
// answer's headers, and, when timeout is not 0, on the whole call. A client
// that streams files passes 0: a whole-call timeout would cut a large
// download or upload short however fast its bytes flow; the caller's
// context bounds it instead.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}
