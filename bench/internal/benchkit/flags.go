package benchkit

import (
	"flag"
	"io"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// PrimaryAddrFlag is the flag of service d's primary listener: http-addr
// for an HTTP API, or what the service named it instead (the nats service
// listens for NATS clients on --addr). A benchmark that sets only
// http-addr leaves such a service on its default port, where another ocis
// on the machine may already listen.
func PrimaryAddrFlag(d service.Descriptor) string {
	fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.NewConfig().RegisterFlags(fs)
	if fs.Lookup("http-addr") == nil && fs.Lookup("addr") != nil {
		return "addr"
	}
	return "http-addr"
}
