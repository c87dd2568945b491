package benchkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Build builds pkg (a path such as "./cmd/ocis") into out with the go
// command that runs the benchmark, from the module root, and logs how long
// it took.
func Build(ctx context.Context, log io.Writer, out, pkg string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	fmt.Fprintf(log, "built %s in %s\n", pkg, time.Since(t0).Round(time.Millisecond))
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the ocis module; run the benchmark from its root")
	}
	return filepath.Dir(gomod), nil
}

// WatchSignals ends a benchmark run cleanly: a first SIGINT or SIGTERM
// cancels the run's context, so every deferred clean-up runs; a second
// signal, or a run still going a minute after its context ended, calls
// cleanup and exits at once with status 1. name prefixes the messages.
// The returned function stops watching.
func WatchSignals(ctx context.Context, cancel context.CancelFunc, name string, stderr io.Writer, cleanup func()) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "%s: %s, stopping; send another to exit at once\n", name, sig)
			cancel()
		case <-ctx.Done():
		}
		select {
		case <-sigs:
		case <-time.After(time.Minute):
		}
		fmt.Fprintf(stderr, "%s: not stopped in time, killing children and exiting\n", name)
		cleanup()
		os.Exit(1)
	}()
	return func() { signal.Stop(sigs) }
}
