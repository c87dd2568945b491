// Package transport holds the HTTP side shared by every service: strict JSON
// decoding, the error encoder, routing with JSON 404/405 answers, the HTTP
// server as an oklog/run actor, the debug server, bearer-token
// authentication and the client helpers.
package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// DefaultMaxBody bounds JSON request bodies unless a route says otherwise.
const DefaultMaxBody = 1 << 20

// DecodeJSON decodes the request body into a T, strictly: one JSON value,
// no unknown fields, no trailing data. The body size limit is enforced by the
// router (see Router.Handle); exceeding it here becomes too_large.
func DecodeJSON[T any](_ context.Context, r *http.Request) (any, error) {
	var v T
	if err := decodeStrict(r.Body, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// errBodyTimeout answers a body still arriving at the listener's body
// timeout (BodyTimeout).
var errBodyTimeout = fmt.Errorf("%w: request body did not arrive within the body timeout", apierr.ErrRequestTimeout)

func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// A second value, or garbage after the first, is malformed too;
		// reading past the limit while looking for it is still too large.
		_, err = dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return trailingError(err)
	}
	return decodeError(err)
}

// trailingError classifies what followed a request's JSON value. It is
// apart from decodeStrict, as is decodeError, because the targets of
// errors.As move to the heap where they are declared: declared in
// decodeStrict, they cost every request three allocations.
func trailingError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case TimedOut(err):
		return errBodyTimeout
	case errors.As(err, &maxErr):
		return fmt.Errorf("%w: request body over %d bytes", apierr.ErrTooLarge, maxErr.Limit)
	default:
		return fmt.Errorf("%w: malformed JSON: trailing data after the object", apierr.ErrInvalidArgument)
	}
}

// decodeError classifies a request body that did not decode.
func decodeError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		kind      *apierr.Error
	)
	switch {
	case TimedOut(err):
		return errBodyTimeout
	case errors.As(err, &maxErr):
		return fmt.Errorf("%w: request body over %d bytes", apierr.ErrTooLarge, maxErr.Limit)
	case errors.As(err, &kind):
		// The body was cut for a reason of the server's own (a stop's
		// 503): that is the answer, not the client's JSON.
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: request body is empty, want a JSON object", apierr.ErrInvalidArgument)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: malformed JSON: %v", apierr.ErrInvalidArgument, err)
	case errors.As(err, &typeErr):
		return fmt.Errorf("%w: field %q wants %s, got %s", apierr.ErrInvalidArgument, typeErr.Field, typeErr.Type, typeErr.Value)
	default:
		// encoding/json reports unknown fields only as text.
		return fmt.Errorf("%w: %v", apierr.ErrInvalidArgument, err)
	}
}

// NoBody is a decoder for routes whose request is built from the URL alone.
func NoBody[T any](build func(r *http.Request) T) httptransport.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		return build(r), nil
	}
}

// EncodeJSON returns a response encoder that writes response as JSON with
// the given status; 204 writes no body.
func EncodeJSON(status int) httptransport.EncodeResponseFunc {
	return func(_ context.Context, w http.ResponseWriter, response any) error {
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return nil
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		return json.NewEncoder(w).Encode(response)
	}
}
