package transport_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name            string
		err             error
		wantStatus      int
		wantCode        string
		wantReason      string
		wantMessage     string
		wantRetryAfter  string
		wantAuthHeader  bool
		wantLogContains string
	}{
		{name: "invalid argument", err: fmt.Errorf("%w: name is empty", apierr.ErrInvalidArgument), wantStatus: 400, wantCode: "invalid_argument", wantMessage: "invalid argument: name is empty"},
		{name: "unauthenticated", err: fmt.Errorf("%w: token expired", apierr.ErrUnauthenticated), wantStatus: 401, wantCode: "unauthenticated", wantMessage: "unauthenticated: token expired", wantAuthHeader: true},
		{name: "permission denied", err: apierr.ErrPermissionDenied, wantStatus: 403, wantCode: "permission_denied", wantMessage: "permission denied"},
		{name: "sentinel keeps its message", err: fmt.Errorf("%w: bob", errUserNotFound), wantStatus: 404, wantCode: "not_found", wantReason: "test.user_not_found", wantMessage: "user not found: bob"},
		{name: "request timeout", err: fmt.Errorf("%w: body too slow", apierr.ErrRequestTimeout), wantStatus: 408, wantCode: "request_timeout", wantMessage: "request timeout: body too slow"},
		{name: "resource exhausted with its wait", err: apierr.WithRetryAfter(apierr.ErrResourceExhausted, 1500*time.Millisecond), wantStatus: 429, wantCode: "resource_exhausted", wantMessage: "too many requests", wantRetryAfter: "2"},
		{name: "method not allowed", err: apierr.ErrMethodNotAllowed, wantStatus: 405, wantCode: "method_not_allowed", wantMessage: "method not allowed"},
		{name: "conflict", err: errUserExists, wantStatus: 409, wantCode: "conflict", wantReason: "test.user_exists", wantMessage: "user exists"},
		{name: "precondition failed", err: apierr.ErrPreconditionFailed, wantStatus: 412, wantCode: "precondition_failed", wantMessage: "precondition failed"},
		{name: "too large", err: apierr.ErrTooLarge, wantStatus: 413, wantCode: "too_large", wantMessage: "too large"},
		{name: "insufficient storage", err: apierr.ErrInsufficientSpace, wantStatus: 507, wantCode: "insufficient_storage", wantMessage: "insufficient storage"},
		{name: "unavailable", err: apierr.ErrUnavailable, wantStatus: 503, wantCode: "unavailable", wantMessage: "unavailable"},
		{
			name: "plain error is internal and hidden", err: errors.New("open /srv/ocis/secret.db: no such file"),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error", wantLogContains: "/srv/ocis/secret.db",
		},
		{
			name: "internal kind is hidden", err: fmt.Errorf("%w: panic at /home/x/main.go:12", apierr.ErrInternal),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error", wantLogContains: "main.go:12",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			w := httptest.NewRecorder()
			transport.WriteError(log.NewLogfmtLogger(&logs), w, tc.err)

			if w.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tc.wantStatus)
			}
			got := decodeWireError(t, w.Body.Bytes())
			wantReason := tc.wantReason
			if wantReason == "" {
				wantReason = tc.wantCode
			}
			if got.Error.Code != tc.wantCode || got.Error.Reason != wantReason || got.Error.Message != tc.wantMessage {
				t.Errorf("error = {%q, %q, %q}, want {%q, %q, %q}", got.Error.Code, got.Error.Reason, got.Error.Message, tc.wantCode, wantReason, tc.wantMessage)
			}
			if got := w.Header().Get("Retry-After"); got != tc.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetryAfter)
			}
			if gotAuth := w.Header().Get("WWW-Authenticate") != ""; gotAuth != tc.wantAuthHeader {
				t.Errorf("WWW-Authenticate set = %t, want %t", gotAuth, tc.wantAuthHeader)
			}
			if tc.wantLogContains != "" {
				if !strings.Contains(logs.String(), tc.wantLogContains) {
					t.Errorf("log lacks %q: %s", tc.wantLogContains, logs.String())
				}
				if strings.Contains(w.Body.String(), tc.wantLogContains) {
					t.Errorf("answer leaks %q: %s", tc.wantLogContains, w.Body)
				}
			}
		})
	}
}

func TestReadError(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		body        string
		wantIs      []error
		wantIsNot   []error
		wantCode    apierr.Code
		wantMessage string
	}{
		{
			name: "wire error matches its sentinel", status: 404, body: `{"error":{"code":"not_found","reason":"test.user_not_found","message":"user not found: bob"}}`,
			wantIs: []error{errUserNotFound, apierr.ErrNotFound}, wantIsNot: []error{apierr.ErrConflict, errUserExists},
			wantCode: apierr.CodeNotFound, wantMessage: "user not found: bob",
		},
		{
			name: "code wins over status", status: 500, body: `{"error":{"code":"conflict","reason":"test.user_exists","message":"user exists"}}`,
			wantIs: []error{errUserExists}, wantCode: apierr.CodeConflict, wantMessage: "user exists",
		},
		{
			name: "a reworded message keeps its identity", status: 404, body: `{"error":{"code":"not_found","reason":"test.user_not_found","message":"no such account"}}`,
			wantIs: []error{errUserNotFound}, wantIsNot: []error{errUserExists}, wantCode: apierr.CodeNotFound, wantMessage: "no such account",
		},
		{
			name: "an answer without a reason matches its kind only", status: 404, body: `{"error":{"code":"not_found","message":"user not found"}}`,
			wantIs: []error{apierr.ErrNotFound}, wantIsNot: []error{errUserNotFound}, wantCode: apierr.CodeNotFound, wantMessage: "user not found",
		},
		{
			name: "plain text answer is mapped by status", status: 503, body: "Service Unavailable\n",
			wantIs: []error{apierr.ErrUnavailable}, wantCode: apierr.CodeUnavailable,
		},
		{
			name: "JSON without a code is mapped by status", status: 413, body: `{"message":"too big"}`,
			wantIs: []error{apierr.ErrTooLarge}, wantCode: apierr.CodeTooLarge,
		},
		{
			name: "unknown status is internal", status: 502, body: "<html>bad gateway</html>",
			wantIs: []error{apierr.ErrInternal}, wantCode: apierr.CodeInternal,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{
				StatusCode: tc.status,
				Status:     fmt.Sprintf("%d %s", tc.status, http.StatusText(tc.status)),
				Body:       io.NopCloser(strings.NewReader(tc.body)),
				Request:    httptest.NewRequest(http.MethodGet, "http://users.example:9140/api/v1/users/bob", nil),
			}
			err := transport.ReadError(resp)
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
				}
			}
			for _, target := range tc.wantIsNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
				}
			}
			if got := apierr.CodeOf(err); got != tc.wantCode {
				t.Errorf("CodeOf = %q, want %q", got, tc.wantCode)
			}
			if tc.wantMessage != "" && err.Error() != tc.wantMessage {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMessage)
			}
		})
	}
}

func TestWriteErrorReadErrorRoundTrip(t *testing.T) {
	for _, sent := range []error{
		fmt.Errorf("%w: bob", errUserNotFound),
		fmt.Errorf("%w: in team blue", fmt.Errorf("%w: taken", errUserExists)),
		fmt.Errorf("%w: request body over 16 bytes", apierr.ErrTooLarge),
	} {
		t.Run(sent.Error(), func(t *testing.T) {
			w := httptest.NewRecorder()
			transport.WriteError(log.NewNopLogger(), w, sent)
			got := transport.ReadError(w.Result())
			var want *apierr.Error
			if !errors.As(sent, &want) {
				t.Fatalf("%v carries no *apierr.Error", sent)
			}
			if !errors.Is(got, want) {
				t.Errorf("errors.Is(%v, %v) = false after the round trip", got, want)
			}
			if apierr.CodeOf(got) != apierr.CodeOf(sent) {
				t.Errorf("code = %q, want %q", apierr.CodeOf(got), apierr.CodeOf(sent))
			}
		})
	}
}
