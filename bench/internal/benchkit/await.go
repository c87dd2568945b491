package benchkit

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// AwaitStatus polls url with GET every interval until it answers want. It
// gives up after timeout, when ctx ends, or when exited closes (the server
// is gone). header, when set, is added to every request.
func AwaitStatus(ctx context.Context, client *http.Client, url string, header http.Header, want int, interval, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-time.After(interval):
		case <-exited:
			return fmt.Errorf("exited before %s answered %d (last: %v)", url, want, last)
		case <-deadline.C:
			return fmt.Errorf("%s did not answer %d within %s (last: %v)", url, want, timeout, last)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
