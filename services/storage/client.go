package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Client is the storage service across HTTP. Pass the caller's token with
// transport.WithBearer; every call acts on that user's files. Uploads and
// downloads stream: neither holds a file in memory.
type Client struct {
	base *url.URL
	hc   *http.Client
	e    Endpoints
}

// UploadOptions are the conditions of an upload.
type UploadOptions struct {
	// IfMatch replaces the file only while it has this etag (or, "*",
	// only when it exists).
	IfMatch string
	// IfNoneMatch "*" creates the file only, never replaces one.
	IfNoneMatch string
}

// DownloadInfo is what the headers of a download say about it.
type DownloadInfo struct {
	// File is the whole file: Size counts all of it, not just a range;
	// MTime has the second precision of Last-Modified.
	File FileInfo
	// Partial is set when the body holds the range asked for (206).
	Partial bool
	// ContentRange is the Content-Range of a partial answer.
	ContentRange string
	// Length is the bytes in the body, -1 when not known.
	Length int64
}

// NewClient returns a client of the storage service at base
// ("http://host:port"), calling through hc, or, when hc is nil, a client
// with timeouts on dialling and on the answer's headers but none on the
// whole call, which would cut a large transfer short
// (transport.NewHTTPClient); bound a call with its context.
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse storage url %q: %w", base, err)
	}
	if hc == nil {
		hc = transport.NewHTTPClient(0)
	}
	c := &Client{base: u, hc: hc}
	API(&c.e).Dial(hc, u)
	return c, nil
}

// Upload streams body, of size bytes (-1 when not known), to the file at p.
// It reports whether the upload created the file rather than replaced it.
// body is not closed; the caller owns it.
func (c *Client) Upload(ctx context.Context, p string, body io.Reader, size int64, opts UploadOptions) (FileInfo, bool, error) {
	var rc io.ReadCloser = http.NoBody
	if body != nil && size != 0 {
		rc = io.NopCloser(body)
	}
	req, err := putFile.Request(ctx, c.base, PutRequest{Path: p})
	if err != nil {
		return FileInfo{}, false, err
	}
	req.Body, req.ContentLength = rc, size
	if opts.IfMatch != "" {
		req.Header.Set("If-Match", opts.IfMatch)
	}
	if opts.IfNoneMatch != "" {
		req.Header.Set("If-None-Match", opts.IfNoneMatch)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req)
	if err != nil {
		return FileInfo{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return FileInfo{}, false, transport.ReadError(resp)
	}
	var fi FileInfo
	if err := json.NewDecoder(resp.Body).Decode(&fi); err != nil {
		return FileInfo{}, false, fmt.Errorf("%w: decode answer of PUT %s: %v", apierr.ErrInternal, quote(p), err)
	}
	return fi, resp.StatusCode == http.StatusCreated, nil
}

// Download opens the file at p for reading, the whole of it or, when
// rangeHeader is set ("bytes=0-99"), that range. The caller closes the
// body.
func (c *Client) Download(ctx context.Context, p, rangeHeader string) (io.ReadCloser, DownloadInfo, error) {
	req, err := getFile.Request(ctx, c.base, GetRequest{Path: p})
	if err != nil {
		return nil, DownloadInfo{}, err
	}
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, DownloadInfo{}, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, DownloadInfo{}, transport.ReadError(resp)
	}
	info := DownloadInfo{
		File:         FileInfo{Path: p, Size: resp.ContentLength, ETag: resp.Header.Get("ETag")},
		Partial:      resp.StatusCode == http.StatusPartialContent,
		ContentRange: resp.Header.Get("Content-Range"),
		Length:       resp.ContentLength,
	}
	if info.Partial {
		info.File.Size = rangeTotal(info.ContentRange)
	}
	if mtime, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.File.MTime = mtime.UTC()
	}
	return resp.Body, info, nil
}

// List returns the directory dir ("" for the root; a trailing "/" is
// optional).
func (c *Client) List(ctx context.Context, dir string) (Listing, error) {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return endpoint.Call[ListRequest, Listing](ctx, c.e.List, ListRequest{Path: dir})
}

// Delete removes the file at p, or the directory at p if it is empty.
func (c *Client) Delete(ctx context.Context, p string) error {
	_, err := endpoint.Call[DeleteRequest, endpoint.Empty](ctx, c.e.Delete, DeleteRequest{Path: p})
	return err
}

// do sends req; a peer that was not reached is the service being
// unavailable, as for every other client call.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", apierr.ErrUnavailable, req.Method, c.base.Host, err)
	}
	return resp, nil
}

// escapePath escapes each segment of p for a URL. "." and ".." segments are
// escaped too, so that URL resolution on the way leaves them for the
// server to refuse rather than resolving them away.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch s {
		case ".":
			segs[i] = "%2E"
		case "..":
			segs[i] = "%2E%2E"
		default:
			segs[i] = url.PathEscape(s)
		}
	}
	return strings.Join(segs, "/")
}

// rangeTotal is the complete length in a Content-Range ("bytes 0-9/100"),
// or -1 when it is not given.
func rangeTotal(contentRange string) int64 {
	_, total, ok := strings.Cut(contentRange, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
