package main

import (
	"net"
	"net/http"
	"time"
)

// newHTTPClient is the benchmark's own client: keep-alive, no proxy from
// the environment, and buffers large enough that the client is not what
// limits a large transfer.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}}
}
