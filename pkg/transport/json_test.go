package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    createUserRequest
		wantErr error
	}{
		{name: "valid", body: `{"name":"alice","age":7}`, want: createUserRequest{Name: "alice", Age: 7}},
		{name: "missing fields stay zero", body: `{"name":"alice"}`, want: createUserRequest{Name: "alice"}},
		{name: "trailing whitespace", body: "{\"name\":\"alice\"}\n\t ", want: createUserRequest{Name: "alice"}},
		{name: "malformed", body: `{"name":`, wantErr: apierr.ErrInvalidArgument},
		{name: "not JSON at all", body: `name=alice`, wantErr: apierr.ErrInvalidArgument},
		{name: "unknown field", body: `{"name":"alice","admin":true}`, wantErr: apierr.ErrInvalidArgument},
		{name: "trailing object", body: `{"name":"alice"}{"name":"mallory"}`, wantErr: apierr.ErrInvalidArgument},
		{name: "trailing garbage", body: `{"name":"alice"} x`, wantErr: apierr.ErrInvalidArgument},
		{name: "empty body", body: ``, wantErr: apierr.ErrInvalidArgument},
		{name: "whitespace only", body: "  \n", wantErr: apierr.ErrInvalidArgument},
		{name: "wrong field type", body: `{"name":"alice","age":"seven"}`, wantErr: apierr.ErrInvalidArgument},
		{name: "array instead of object", body: `[]`, wantErr: apierr.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			got, err := transport.DecodeJSON[createUserRequest](context.Background(), r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want one that is %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if got != tc.want {
				t.Errorf("decoded %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeJSONWrongFieldTypeNamesField(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"age":"seven"}`))
	_, err := transport.DecodeJSON[createUserRequest](context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), `"age"`) {
		t.Errorf("err = %v, want it to name the field \"age\"", err)
	}
}

// unsized hides the length of a body, the way a chunked upload arrives.
type unsized struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	keys := newKeys(t, testSecret)
	rt := newRouter(keys)
	token := sign(t, keys, "alice", time.Hour)
	big := `{"name":"` + strings.Repeat("a", 2*smallLimit) + `"}`
	for _, tc := range []struct {
		name       string
		path       string
		body       io.Reader
		token      string
		wantStatus int
		wantCode   string
	}{
		{name: "under the limit", path: "/api/v1/small", body: strings.NewReader(`{"name":"al"}`), wantStatus: http.StatusOK},
		{name: "declared length over the limit", path: "/api/v1/small", body: strings.NewReader(big), wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		{name: "unsized body over the limit", path: "/api/v1/small", body: unsized{strings.NewReader(big)}, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		{name: "over the default limit", path: "/api/v1/echo", body: unsized{strings.NewReader(`{"name":"` + strings.Repeat("a", transport.DefaultMaxBody) + `"}`)}, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		// The object itself fits; the padding after it does not.
		{name: "unsized object padded over the limit", path: "/api/v1/small", body: unsized{strings.NewReader(`{"name":"al"}` + strings.Repeat(" ", 2*smallLimit))}, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		{name: "malformed under the limit", path: "/api/v1/small", body: strings.NewReader(`{"name"`), wantStatus: http.StatusBadRequest, wantCode: "invalid_argument"},
		// The token is checked before the body is read, so an anonymous
		// caller cannot make a service read a large body.
		{name: "anonymous caller over the limit", path: "/api/v1/small-protected", body: strings.NewReader(big), wantStatus: http.StatusUnauthorized, wantCode: "unauthenticated"},
		{name: "authenticated caller over the limit", path: "/api/v1/small-protected", body: strings.NewReader(big), token: token, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tc.path, tc.body)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantCode == "" {
				return
			}
			if got := decodeWireError(t, w.Body.Bytes()); got.Error.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", got.Error.Code, tc.wantCode)
			}
		})
	}
}

// cutBody yields part of a JSON object and then the error a stop's cut
// gives the read.
type cutBody struct {
	part string
	err  error
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.part == "" {
		return 0, b.err
	}
	n := copy(p, b.part)
	b.part = b.part[n:]
	return n, nil
}

func TestDecodeJSONKeepsTheServersReasonForACut(t *testing.T) {
	stopping := fmt.Errorf("%w: service is stopping", apierr.ErrUnavailable)
	r := httptest.NewRequest(http.MethodPost, "/", &cutBody{part: `{"name":"al`, err: stopping})
	_, err := transport.DecodeJSON[createUserRequest](context.Background(), r)
	if !errors.Is(err, apierr.ErrUnavailable) {
		t.Errorf("err = %v, want %v: the cut is the server's, not malformed JSON", err, apierr.ErrUnavailable)
	}
}
