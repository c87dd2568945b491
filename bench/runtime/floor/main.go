// Command floor is the baseline of the cold start benchmark: the least a Go
// program can do that looks like `ocis server` from outside. It opens one
// HTTP listener per address it is given, answers GET /readyz with 200 on the
// first, and exits 0 on SIGTERM or SIGINT after a graceful shutdown. The time
// from exec to its first 200 is what any Go server pays before its own code
// does anything, so `ocis server` is measured against it.
//
//	floor 127.0.0.1:9250 127.0.0.1:9140 127.0.0.1:9145
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := serve(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func serve(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("usage: floor addr [addr...]")
	}
	// Signals first, so a SIGTERM that arrives right after the first 200 is
	// a clean stop, as it is for ocis server.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	servers := make([]*http.Server, 0, len(addrs))
	errc := make(chan error, len(addrs))
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		if i == 0 {
			mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusOK)
			})
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", addr, err)
			}
		}()
	}

	select {
	case <-sigs:
	case err := <-errc:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
