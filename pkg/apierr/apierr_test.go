package apierr_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// errUserNotFound stands for a sentinel a service declares.
var errUserNotFound = apierr.New(apierr.CodeNotFound, "users.user_not_found", "user not found")

func TestErrorIs(t *testing.T) {
	// decoded is what a client rebuilds from the wire after the server
	// returned fmt.Errorf("%w: bob", errUserNotFound).
	decoded := apierr.New(apierr.CodeNotFound, "users.user_not_found", "user not found: bob")
	// reworded is the same sentinel after its message was changed in a
	// later release: identity is the reason, so clients still match it.
	reworded := apierr.New(apierr.CodeNotFound, "users.user_not_found", "no such account: bob")
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{name: "decoded matches its sentinel", err: decoded, target: errUserNotFound, want: true},
		{name: "a reworded message still matches", err: reworded, target: errUserNotFound, want: true},
		{name: "decoded matches the generic kind", err: decoded, target: apierr.ErrNotFound, want: true},
		{name: "decoded does not match another kind", err: decoded, target: apierr.ErrConflict, want: false},
		{name: "decoded does not match another sentinel of its kind", err: decoded, target: apierr.New(apierr.CodeNotFound, "storage.file_not_found", "file not found"), want: false},
		{name: "a message prefix is no identity", err: apierr.New(apierr.CodeConflict, "runtime.busy", "service is busy rebuilding"), target: apierr.New(apierr.CodeConflict, "runtime.wrong_state", "service is"), want: false},
		{name: "same reason, other kind", err: decoded, target: apierr.New(apierr.CodeConflict, "users.user_not_found", "user not found"), want: false},
		{name: "wrapped sentinel matches it", err: fmt.Errorf("%w: bob", errUserNotFound), target: errUserNotFound, want: true},
		{name: "wrapped sentinel matches its kind", err: fmt.Errorf("lookup: %w", errUserNotFound), target: apierr.ErrNotFound, want: true},
		{name: "plain error with the same text", err: decoded, target: errors.New("user not found"), want: false},
		{name: "plain error is no kind", err: errors.New("user not found"), target: apierr.ErrNotFound, want: false},
		{name: "generic kind does not match a specific sentinel", err: apierr.ErrNotFound, target: errUserNotFound, want: false},
		{name: "a cause kept beside the kind", err: fmt.Errorf("%w: dial x: %w", apierr.ErrUnavailable, syscall.ECONNREFUSED), target: syscall.ECONNREFUSED, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is(%v, %v) = %t, want %t", tc.err, tc.target, got, tc.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *apierr.Error
		want string
	}{
		{name: "message", err: apierr.New(apierr.CodeConflict, "users.user_exists", "user exists"), want: "user exists"},
		{name: "generic sentinel", err: apierr.ErrTooLarge, want: "too large"},
		{name: "no message falls back to the code", err: apierr.New(apierr.CodeTooLarge, "x.y", ""), want: "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCodeAndReasonOf(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantCode   apierr.Code
		wantReason string
	}{
		{name: "generic sentinel", err: apierr.ErrConflict, wantCode: apierr.CodeConflict, wantReason: "conflict"},
		{name: "wrapped", err: fmt.Errorf("outer: %w", fmt.Errorf("%w: bob", errUserNotFound)), wantCode: apierr.CodeNotFound, wantReason: "users.user_not_found"},
		{name: "joined", err: errors.Join(errors.New("plain"), apierr.ErrTooLarge), wantCode: apierr.CodeTooLarge, wantReason: "too_large"},
		{name: "retry-after keeps the kind", err: apierr.WithRetryAfter(apierr.ErrResourceExhausted, time.Second), wantCode: apierr.CodeResourceExhausted, wantReason: "resource_exhausted"},
		{name: "plain error is internal", err: errors.New("disk on fire"), wantCode: apierr.CodeInternal, wantReason: "internal"},
		{name: "nil is internal", err: nil, wantCode: apierr.CodeInternal, wantReason: "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apierr.CodeOf(tc.err); got != tc.wantCode {
				t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.wantCode)
			}
			if got := apierr.ReasonOf(tc.err); got != tc.wantReason {
				t.Errorf("ReasonOf(%v) = %q, want %q", tc.err, got, tc.wantReason)
			}
		})
	}
}

func TestRetryAfterOf(t *testing.T) {
	err := fmt.Errorf("login: %w", apierr.WithRetryAfter(apierr.ErrResourceExhausted, 3*time.Second))
	got, ok := apierr.RetryAfterOf(err)
	if !ok || got != 3*time.Second {
		t.Fatalf("RetryAfterOf = %v, %t; want 3s, true", got, ok)
	}
	if _, ok := apierr.RetryAfterOf(apierr.ErrResourceExhausted); ok {
		t.Fatal("RetryAfterOf found a wait on an error that carries none")
	}
}
