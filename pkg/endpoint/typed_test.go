package endpoint_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

type greetRequest struct{ Name string }

type greetResponse struct{ Greeting string }

var (
	errNobody       = apierr.New(apierr.CodeInvalidArgument, "test.name_empty", "name is empty")
	errUserNotFound = apierr.New(apierr.CodeNotFound, "test.user_not_found", "user not found")
)

func greet(_ context.Context, req greetRequest) (greetResponse, error) {
	if req.Name == "" {
		return greetResponse{}, errNobody
	}
	return greetResponse{Greeting: "hello " + req.Name}, nil
}

func TestTyped(t *testing.T) {
	e := endpoint.Typed(greet)
	for _, tc := range []struct {
		name     string
		request  any
		want     any
		wantErr  error
		wantCode apierr.Code
	}{
		{name: "right type", request: greetRequest{Name: "alice"}, want: greetResponse{Greeting: "hello alice"}},
		{name: "business error passes through", request: greetRequest{}, want: greetResponse{}, wantErr: errNobody, wantCode: apierr.CodeInvalidArgument},
		{name: "wrong type", request: "alice", wantErr: apierr.ErrInternal, wantCode: apierr.CodeInternal},
		{name: "pointer instead of value", request: &greetRequest{Name: "alice"}, wantErr: apierr.ErrInternal, wantCode: apierr.CodeInternal},
		{name: "nil request", request: nil, wantErr: apierr.ErrInternal, wantCode: apierr.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e(context.Background(), tc.request)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want one that is %v", err, tc.wantErr)
				}
				if gotCode := apierr.CodeOf(err); gotCode != tc.wantCode {
					t.Errorf("CodeOf(err) = %q, want %q", gotCode, tc.wantCode)
				}
			} else if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if got != tc.want {
				t.Errorf("response = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestCall(t *testing.T) {
	wrongAnswer := func(context.Context, any) (any, error) { return "not a greetResponse", nil }
	failing := func(context.Context, any) (any, error) { return nil, apierr.ErrUnavailable }
	for _, tc := range []struct {
		name    string
		e       func(context.Context, any) (any, error)
		req     greetRequest
		want    greetResponse
		wantErr error
	}{
		{name: "typed round trip", e: endpoint.Typed(greet), req: greetRequest{Name: "bob"}, want: greetResponse{Greeting: "hello bob"}},
		{name: "error is returned with the zero response", e: failing, req: greetRequest{Name: "bob"}, wantErr: apierr.ErrUnavailable},
		{name: "wrong response type is internal", e: wrongAnswer, req: greetRequest{Name: "bob"}, wantErr: apierr.ErrInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := endpoint.Call[greetRequest, greetResponse](context.Background(), tc.e, tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("response = %#v, want %#v", got, tc.want)
			}
		})
	}
}
