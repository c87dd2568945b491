package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

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
// methods that carry a body are sent as JSON.
func ClientRoute[Req, Resp any](c *http.Client, base *url.URL, method string, path func(Req) string) endpoint.Endpoint {
	enc := func(ctx context.Context, r *http.Request, request any) error {
		req, ok := request.(Req)
		if !ok {
			return fmt.Errorf("%w: client wants %T, got %T", apierr.ErrInternal, req, request)
		}
		u, err := base.Parse(path(req))
		if err != nil {
			return fmt.Errorf("%w: build url: %v", apierr.ErrInvalidArgument, err)
		}
		r.URL = u
		r.Host = u.Host
		if token, ok := ctx.Value(bearerKey{}).(string); ok {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if method == http.MethodGet || method == http.MethodDelete || method == http.MethodHead {
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
