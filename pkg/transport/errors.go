package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// errorBody is the one error shape on the wire.
type errorBody struct {
	Error wireError `json:"error"`
}

type wireError struct {
	Code    apierr.Code `json:"code"`
	Reason  string      `json:"reason"`
	Message string      `json:"message"`
}

// StatusOf maps an error kind to its HTTP status.
func StatusOf(code apierr.Code) int {
	switch code {
	case apierr.CodeInvalidArgument:
		return http.StatusBadRequest
	case apierr.CodeUnauthenticated:
		return http.StatusUnauthorized
	case apierr.CodePermissionDenied:
		return http.StatusForbidden
	case apierr.CodeNotFound:
		return http.StatusNotFound
	case apierr.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case apierr.CodeRequestTimeout:
		return http.StatusRequestTimeout
	case apierr.CodeConflict:
		return http.StatusConflict
	case apierr.CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case apierr.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case apierr.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case apierr.CodeInsufficientSpace:
		return http.StatusInsufficientStorage
	case apierr.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// codeOfStatus is the inverse of StatusOf, for answers that carry no JSON
// error body (a proxy in between, a dying server).
func codeOfStatus(status int) apierr.Code {
	for _, c := range apierr.Codes() {
		if StatusOf(c) == status {
			return c
		}
	}
	return apierr.CodeInternal
}

// WriteError writes err in the wire shape. Internal errors are logged in full
// and answered with a fixed message, so no path or stack leaves the process.
func WriteError(logger log.Logger, w http.ResponseWriter, err error) {
	code := apierr.CodeOf(err)
	message := err.Error()
	// Context wrapped around a sentinel ("create: user exists: bob") would
	// hide it from the client's errors.Is; the wire message starts at the
	// sentinel's own text.
	var kind *apierr.Error
	if errors.As(err, &kind) && kind.Message != "" {
		if i := strings.Index(message, kind.Message); i > 0 {
			message = message[i:]
		}
	}
	if code == apierr.CodeInternal {
		level.Error(logger).Log("msg", "internal error", "err", err)
		message = "internal error"
	}
	status := StatusOf(code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ocis"`)
	}
	if after, ok := apierr.RetryAfterOf(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(after.Seconds())))))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: wireError{Code: code, Reason: apierr.ReasonOf(err), Message: message}})
}

// ErrorEncoder adapts WriteError to go-kit's server option.
func ErrorEncoder(logger log.Logger) func(context.Context, error, http.ResponseWriter) {
	return func(_ context.Context, err error, w http.ResponseWriter) {
		WriteError(logger, w, err)
	}
}

// ReadError decodes a non-2xx answer back into an *apierr.Error, so that
// errors.Is against a service's sentinels holds on the client's side too.
func ReadError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: read error answer: %v", apierr.ErrUnavailable, err)
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		reason := eb.Error.Reason
		if reason == "" {
			reason = string(eb.Error.Code)
		}
		return apierr.New(eb.Error.Code, reason, eb.Error.Message)
	}
	from := "the server"
	if resp.Request != nil && resp.Request.URL != nil {
		from = resp.Request.URL.Host
	}
	code := codeOfStatus(resp.StatusCode)
	return apierr.New(code, string(code), fmt.Sprintf("%s from %s", resp.Status, from))
}
