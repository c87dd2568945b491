package endpoint_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// errUserNotFound stands for a sentinel a service declares.
var errUserNotFound = endpoint.New(endpoint.CodeNotFound, "user not found")

func TestErrorIs(t *testing.T) {
	// decoded is what a client rebuilds from the wire after the server
	// returned fmt.Errorf("%w: bob", errUserNotFound).
	decoded := &endpoint.Error{Code: endpoint.CodeNotFound, Message: "user not found: bob"}
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{name: "decoded matches its sentinel", err: decoded, target: errUserNotFound, want: true},
		{name: "decoded matches the generic kind", err: decoded, target: endpoint.ErrNotFound, want: true},
		{name: "decoded does not match another kind", err: decoded, target: endpoint.ErrConflict, want: false},
		{name: "decoded does not match another sentinel of its kind", err: decoded, target: endpoint.New(endpoint.CodeNotFound, "file not found"), want: false},
		{name: "same message, other kind", err: decoded, target: endpoint.New(endpoint.CodeConflict, "user not found"), want: false},
		{name: "sentinel does not match a longer sentinel", err: errUserNotFound, target: decoded, want: false},
		{name: "wrapped sentinel matches it", err: fmt.Errorf("%w: bob", errUserNotFound), target: errUserNotFound, want: true},
		{name: "wrapped sentinel matches its kind", err: fmt.Errorf("lookup: %w", errUserNotFound), target: endpoint.ErrNotFound, want: true},
		{name: "plain error with the same text", err: decoded, target: errors.New("user not found"), want: false},
		{name: "plain error is no kind", err: errors.New("user not found"), target: endpoint.ErrNotFound, want: false},
		{name: "generic kind does not match a specific sentinel", err: endpoint.ErrNotFound, target: errUserNotFound, want: false},
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
		err  *endpoint.Error
		want string
	}{
		{name: "message", err: endpoint.New(endpoint.CodeConflict, "user exists"), want: "user exists"},
		{name: "generic sentinel", err: endpoint.ErrTooLarge, want: "too large"},
		{name: "no message falls back to the code", err: endpoint.New(endpoint.CodeTooLarge, ""), want: "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want endpoint.Code
	}{
		{name: "sentinel", err: endpoint.ErrConflict, want: endpoint.CodeConflict},
		{name: "wrapped", err: fmt.Errorf("outer: %w", fmt.Errorf("%w: bob", errUserNotFound)), want: endpoint.CodeNotFound},
		{name: "joined", err: errors.Join(errors.New("plain"), endpoint.ErrTooLarge), want: endpoint.CodeTooLarge},
		{name: "plain error is internal", err: errors.New("disk on fire"), want: endpoint.CodeInternal},
		{name: "nil is internal", err: nil, want: endpoint.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := endpoint.CodeOf(tc.err); got != tc.want {
				t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
