// Command fastproto is a measurement prototype, not part of ocis: the
// proxy's data plane for small authenticated GETs on valyala/fasthttp, to
// see what net/http's floor costs. It verifies the bearer token with the
// same cached keys, counts the request in a Prometheus counter, sets the
// request ID and X-Forwarded-For, and forwards over fasthttp's HostClient.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"log"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/auth"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen")
	upstream := flag.String("upstream", "", "storage address")
	secret := flag.String("secret", "", "jwt secret")
	flag.Parse()
	keys, err := auth.NewKeys(*secret)
	if err != nil {
		log.Fatal(err)
	}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"service", "code"})
	hc := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024, ReadBufferSize: 4096, WriteBufferSize: 4096}
	prefix := []byte("Bearer ")
	h := func(ctx *fasthttp.RequestCtx) {
		a := ctx.Request.Header.Peek("Authorization")
		if !bytes.HasPrefix(a, prefix) {
			ctx.SetStatusCode(401)
			return
		}
		if _, err := keys.Verify(string(a[len(prefix):])); err != nil {
			ctx.SetStatusCode(401)
			return
		}
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		ctx.Request.Header.Set("X-Request-Id", id)
		host, _, _ := net.SplitHostPort(ctx.RemoteAddr().String())
		ctx.Request.Header.Set("X-Forwarded-For", host)
		ctx.Request.Header.Del("Connection")
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.SetStatusCode(503)
			return
		}
		ctx.Response.Header.Set("X-Request-Id", id)
		reqs.WithLabelValues("storage", "200").Inc()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, ReadBufferSize: 4096, WriteBufferSize: 4096}
	log.Fatal(srv.Serve(ln))
}
