// Command fastproto is a measurement prototype, not part of ocis: the
// proxy's data plane for small authenticated GETs on valyala/fasthttp, to
// see what net/http's floor costs. Per request it does what the proxy does
// on that path, with the proxy's own code where that takes no
// http.Request: the route and the placement through proxy.Balancer on a
// registry holding the storage instance, the bearer token checked with the
// same cached keys, a request ID, X-Forwarded-*, hop-by-hop headers
// dropped both ways, the request counter and latency histogram with their
// series resolved once. It has none of the proxy's body timeouts, drain,
// access log, tracing or error shapes.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/services/proxy"
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
	reg := registry.NewMemory()
	routes := []string{"/api/v1/files"}
	if err := reg.Declare("storage", routes, nil); err != nil {
		log.Fatal(err)
	}
	if err := reg.Register(registry.Instance{Service: "storage", Node: "n1", Addr: *upstream, Routes: routes}); err != nil {
		log.Fatal(err)
	}
	f := &forwarder{
		balancer: proxy.NewBalancer(reg),
		keys:     keys,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "request_duration_seconds", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"service"}),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: f.serve, ReadBufferSize: 4096, WriteBufferSize: 4096}
	log.Fatal(srv.Serve(ln))
}

type forwarder struct {
	balancer *proxy.Balancer
	keys     *auth.Keys
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	series   sync.Map // service + code → prometheus.Counter
	timers   sync.Map // service → prometheus.Observer
	clients  sync.Map // instance address → *fasthttp.HostClient
}

var bearerPrefix = []byte("Bearer ")

// hop are the hop-by-hop headers dropped both ways.
var hop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (f *forwarder) serve(ctx *fasthttp.RequestCtx) {
	begin := time.Now()
	service, status := "", fasthttp.StatusOK
	defer func() { f.observe(service, status, time.Since(begin)) }()

	id := string(ctx.Request.Header.Peek("X-Request-Id"))
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
		ctx.Request.Header.Set("X-Request-Id", id)
	}
	path := string(ctx.Path())
	svc, order, owned := f.balancer.Route(path)
	if !owned {
		status = fasthttp.StatusNotFound
		ctx.SetStatusCode(status)
		return
	}
	service = svc
	method := string(ctx.Method())
	if !f.balancer.Public(service, method, path) {
		a := ctx.Request.Header.Peek("Authorization")
		if !bytes.HasPrefix(a, bearerPrefix) {
			status = fasthttp.StatusUnauthorized
			ctx.SetStatusCode(status)
			return
		}
		claims, err := f.keys.Verify(string(a[len(bearerPrefix):]))
		if err != nil {
			status = fasthttp.StatusUnauthorized
			ctx.SetStatusCode(status)
			return
		}
		if order, err = f.balancer.Place(auth.WithClaims(context.Background(), claims), service, method, order); err != nil {
			status = fasthttp.StatusServiceUnavailable
			ctx.SetStatusCode(status)
			return
		}
	}
	if len(order) == 0 {
		status = fasthttp.StatusServiceUnavailable
		ctx.SetStatusCode(status)
		return
	}
	req := &ctx.Request
	for _, k := range hop {
		req.Header.Del(k)
	}
	host, _, _ := net.SplitHostPort(ctx.RemoteAddr().String())
	req.Header.Set("X-Forwarded-For", host)
	req.Header.SetBytesV("X-Forwarded-Host", ctx.Host())
	req.Header.Set("X-Forwarded-Proto", "http")
	in := order[0]
	if err := f.client(in.Addr).Do(req, &ctx.Response); err != nil {
		status = fasthttp.StatusServiceUnavailable
		ctx.Response.Reset()
		ctx.SetStatusCode(status)
		return
	}
	for _, k := range hop {
		ctx.Response.Header.Del(k)
	}
	ctx.Response.Header.Set("X-Request-Id", id)
	status = ctx.Response.StatusCode()
}

// client is the pooled client of the instance at addr.
func (f *forwarder) client(addr string) *fasthttp.HostClient {
	c, ok := f.clients.Load(addr)
	if !ok {
		c, _ = f.clients.LoadOrStore(addr, &fasthttp.HostClient{Addr: addr, MaxConns: 1024, ReadBufferSize: 4096, WriteBufferSize: 4096})
	}
	return c.(*fasthttp.HostClient)
}

type seriesKey struct {
	service string
	code    int
}

// observe counts one answer, with the series resolved once, as the
// proxy's metrics do.
func (f *forwarder) observe(service string, code int, took time.Duration) {
	key := seriesKey{service, code}
	c, ok := f.series.Load(key)
	if !ok {
		c, _ = f.series.LoadOrStore(key, f.requests.WithLabelValues(service, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := f.timers.Load(service)
	if !ok {
		o, _ = f.timers.LoadOrStore(service, f.duration.WithLabelValues(service))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}
