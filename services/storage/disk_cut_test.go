package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

func TestCutUploadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		readErr error
		want    error
	}{
		{name: "idle past the deadline is a timeout", readErr: fmt.Errorf("read tcp 127.0.0.1:9150->127.0.0.1:50000: %w", os.ErrDeadlineExceeded), want: apierr.ErrRequestTimeout},
		{name: "a sender gone is incomplete", readErr: errors.New("read tcp 127.0.0.1:9150->127.0.0.1:50000: connection reset by peer"), want: ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cut(context.Background(), 42, tc.readErr)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("the answer names the connection: %q", err)
			}
			if !strings.Contains(err.Error(), "42 bytes") {
				t.Errorf("the answer does not say how far the upload got: %q", err)
			}
		})
	}
}
