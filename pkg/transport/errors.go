package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// errorBody is the one error shape on the wire.
type errorBody struct {
	Error wireError `json:"error"`
}

type wireError struct {
	Code    endpoint.Code `json:"code"`
	Message string        `json:"message"`
}

// StatusOf maps an error kind to its HTTP status.
func StatusOf(code endpoint.Code) int {
	switch code {
	case endpoint.CodeInvalidArgument:
		return http.StatusBadRequest
	case endpoint.CodeUnauthenticated:
		return http.StatusUnauthorized
	case endpoint.CodePermissionDenied:
		return http.StatusForbidden
	case endpoint.CodeNotFound:
		return http.StatusNotFound
	case endpoint.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case endpoint.CodeConflict:
		return http.StatusConflict
	case endpoint.CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case endpoint.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case endpoint.CodeInsufficientSpace:
		return http.StatusInsufficientStorage
	case endpoint.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// codeOfStatus is the inverse of StatusOf, for answers that carry no JSON
// error body (a proxy in between, a dying server).
func codeOfStatus(status int) endpoint.Code {
	for _, c := range []endpoint.Code{
		endpoint.CodeInvalidArgument, endpoint.CodeUnauthenticated, endpoint.CodePermissionDenied,
		endpoint.CodeNotFound, endpoint.CodeMethodNotAllowed, endpoint.CodeConflict,
		endpoint.CodePreconditionFailed, endpoint.CodeTooLarge, endpoint.CodeInsufficientSpace,
		endpoint.CodeUnavailable,
	} {
		if StatusOf(c) == status {
			return c
		}
	}
	return endpoint.CodeInternal
}

// WriteError writes err in the wire shape. Internal errors are logged in full
// and answered with a fixed message, so no path or stack leaves the process.
func WriteError(logger log.Logger, w http.ResponseWriter, err error) {
	code := endpoint.CodeOf(err)
	message := err.Error()
	// Context wrapped around a sentinel ("create: user exists: bob") would
	// hide it from the client's errors.Is; the wire message starts at the
	// sentinel's own text.
	var kind *endpoint.Error
	if errors.As(err, &kind) && kind.Message != "" {
		if i := strings.Index(message, kind.Message); i > 0 {
			message = message[i:]
		}
	}
	if code == endpoint.CodeInternal {
		level.Error(logger).Log("msg", "internal error", "err", err)
		message = "internal error"
	}
	status := StatusOf(code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ocis"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: wireError{Code: code, Message: message}})
}

// ErrorEncoder adapts WriteError to go-kit's server option.
func ErrorEncoder(logger log.Logger) func(context.Context, error, http.ResponseWriter) {
	return func(_ context.Context, err error, w http.ResponseWriter) {
		WriteError(logger, w, err)
	}
}

// ReadError decodes a non-2xx answer back into an *endpoint.Error, so that
// errors.Is against a service's sentinels holds on the client's side too.
func ReadError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: read error answer: %v", endpoint.ErrUnavailable, err)
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return endpoint.New(eb.Error.Code, eb.Error.Message)
	}
	from := "the server"
	if resp.Request != nil && resp.Request.URL != nil {
		from = resp.Request.URL.Host
	}
	return endpoint.New(codeOfStatus(resp.StatusCode), fmt.Sprintf("%s from %s", resp.Status, from))
}
