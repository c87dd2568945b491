package endpoint

import (
	"errors"
	"strings"
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
	CodeConflict           Code = "conflict"
	CodePreconditionFailed Code = "precondition_failed"
	CodeTooLarge           Code = "too_large"
	CodeInsufficientSpace  Code = "insufficient_storage"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
)

// Error is the one error type that crosses service boundaries. A service
// declares its sentinels with New and wraps them with fmt.Errorf("%w: …");
// the client decodes the wire form back into an *Error, and errors.Is matches
// it against the same sentinel because Is compares the code and the message
// prefix rather than identity.
type Error struct {
	Code    Code
	Message string
	// generic marks the one sentinel per kind, which every error of that
	// kind matches whatever its message.
	generic bool
}

// New returns an error of the given kind.
func New(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is reports whether target is an *Error of the same kind whose message, if
// any, begins this error's message. That lets a decoded wire error match the
// sentinel it was wrapped from on the other side of an HTTP call.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.generic || strings.HasPrefix(e.Message, t.Message))
}

// Generic sentinels, one per kind, for callers that care about the kind only:
// errors.Is(err, endpoint.ErrNotFound) holds for every not_found error.
var (
	ErrInvalidArgument    = generic(CodeInvalidArgument, "invalid argument")
	ErrUnauthenticated    = generic(CodeUnauthenticated, "unauthenticated")
	ErrPermissionDenied   = generic(CodePermissionDenied, "permission denied")
	ErrNotFound           = generic(CodeNotFound, "not found")
	ErrMethodNotAllowed   = generic(CodeMethodNotAllowed, "method not allowed")
	ErrConflict           = generic(CodeConflict, "conflict")
	ErrPreconditionFailed = generic(CodePreconditionFailed, "precondition failed")
	ErrTooLarge           = generic(CodeTooLarge, "too large")
	ErrInsufficientSpace  = generic(CodeInsufficientSpace, "insufficient storage")
	ErrUnavailable        = generic(CodeUnavailable, "unavailable")
	ErrInternal           = generic(CodeInternal, "internal error")
)

func generic(code Code, message string) *Error {
	return &Error{Code: code, Message: message, generic: true}
}

// CodeOf returns the kind of err; errors that carry none are internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
