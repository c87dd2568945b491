// Package apierr holds the one error type that crosses service boundaries:
// a kind (the code, which fixes the HTTP status) and a stable reason that
// names the exact sentinel. It imports nothing of the project, so business
// code, auth and transports all share it without depending on each other.
package apierr

import (
	"errors"
	"time"
)

// Code is the kind of an error as it travels on the wire. The set is closed:
// every error a service returns maps onto one of these.
type Code string

// The error kinds of DESIGN.md ("Errors on the wire").
const (
	CodeInvalidArgument    Code = "invalid_argument"
	CodeUnauthenticated    Code = "unauthenticated"
	CodePermissionDenied   Code = "permission_denied"
	CodeNotFound           Code = "not_found"
	CodeMethodNotAllowed   Code = "method_not_allowed"
	CodeRequestTimeout     Code = "request_timeout"
	CodeConflict           Code = "conflict"
	CodePreconditionFailed Code = "precondition_failed"
	CodeTooLarge           Code = "too_large"
	CodeResourceExhausted  Code = "resource_exhausted"
	CodeInsufficientSpace  Code = "insufficient_storage"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
)

// Codes lists every kind, in the order of DESIGN.md's table.
func Codes() []Code {
	return []Code{
		CodeInvalidArgument, CodeUnauthenticated, CodePermissionDenied, CodeNotFound,
		CodeMethodNotAllowed, CodeRequestTimeout, CodeConflict, CodePreconditionFailed,
		CodeTooLarge, CodeResourceExhausted, CodeInsufficientSpace, CodeUnavailable, CodeInternal,
	}
}

// Error is a sentinel a service declares with New and wraps with
// fmt.Errorf("%w: …"), or what a client decodes from the wire. Identity is
// the pair (code, reason): the message is for people and may be reworded,
// the reason never changes once released.
type Error struct {
	Code Code
	// Reason names the sentinel, "<service>.<snake_case>" such as
	// "users.user_not_found". A generic sentinel's reason is its code.
	Reason  string
	Message string
	// generic marks the one sentinel per kind, which every error of that
	// kind matches whatever its reason.
	generic bool
}

// New returns a sentinel of kind code named reason.
func New(code Code, reason, message string) *Error {
	return &Error{Code: code, Reason: reason, Message: message}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is reports whether target is an *Error of the same kind and reason, or the
// generic sentinel of this error's kind. A decoded wire error thus matches
// the sentinel it was wrapped from on the other side of an HTTP call.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.generic || t.Reason == e.Reason)
}

// Generic sentinels, one per kind, for callers that care about the kind only:
// errors.Is(err, apierr.ErrNotFound) holds for every not_found error.
var (
	ErrInvalidArgument    = generic(CodeInvalidArgument, "invalid argument")
	ErrUnauthenticated    = generic(CodeUnauthenticated, "unauthenticated")
	ErrPermissionDenied   = generic(CodePermissionDenied, "permission denied")
	ErrNotFound           = generic(CodeNotFound, "not found")
	ErrMethodNotAllowed   = generic(CodeMethodNotAllowed, "method not allowed")
	ErrRequestTimeout     = generic(CodeRequestTimeout, "request timeout")
	ErrConflict           = generic(CodeConflict, "conflict")
	ErrPreconditionFailed = generic(CodePreconditionFailed, "precondition failed")
	ErrTooLarge           = generic(CodeTooLarge, "too large")
	ErrResourceExhausted  = generic(CodeResourceExhausted, "too many requests")
	ErrInsufficientSpace  = generic(CodeInsufficientSpace, "insufficient storage")
	ErrUnavailable        = generic(CodeUnavailable, "unavailable")
	ErrInternal           = generic(CodeInternal, "internal error")
)

func generic(code Code, message string) *Error {
	return &Error{Code: code, Reason: string(code), Message: message, generic: true}
}

// CodeOf returns the kind of err; errors that carry none are internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ReasonOf returns the reason of err; errors that carry none are "internal".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return string(CodeOf(err))
}

// retryAfter carries how long a client should wait before trying again.
type retryAfter struct {
	err   error
	after time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// WithRetryAfter attaches a wait to err; the transport answers it with a
// Retry-After header (whole seconds, at least one).
func WithRetryAfter(err error, after time.Duration) error {
	return &retryAfter{err: err, after: after}
}

// RetryAfterOf returns the wait attached to err, if any.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfter
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
