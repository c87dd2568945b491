package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

type pageRequest struct {
	Limit  int
	Before string
}

var errBadLimit = apierr.New(apierr.CodeInvalidArgument, "test.bad_limit", "bad limit")

var pageRoute = transport.Get[pageRequest, pageRequest]("/api/v1/page").
	Query("limit", func(r pageRequest) string {
		if r.Limit == 0 {
			return ""
		}
		return strconv.Itoa(r.Limit)
	}, func(r *pageRequest, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errBadLimit
		}
		r.Limit = n
		return nil
	}).
	Query("before", func(r pageRequest) string { return r.Before }, func(r *pageRequest, v string) error {
		if v == "bad" {
			return errors.New("not a cursor")
		}
		r.Before = v
		return nil
	})

func TestRouteQuery(t *testing.T) {
	keys := newKeys(t, testSecret)
	var server, client kitendpoint.Endpoint = endpoint.Typed(func(_ context.Context, r pageRequest) (pageRequest, error) { return r, nil }), nil
	api := func(e *kitendpoint.Endpoint) transport.API { return transport.API{transport.Bind(e, pageRoute)} }
	rt := transport.NewRouter(log.NewNopLogger(), transport.JWT(keys))
	api(&server).Serve(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	api(&client).Dial(srv.Client(), base)
	token := sign(t, keys, "alice", time.Hour)
	ctx := transport.WithBearer(context.Background(), token)

	for _, want := range []pageRequest{{}, {Limit: 7}, {Limit: 3, Before: "a b&c=d"}} {
		got, err := endpoint.Call[pageRequest, pageRequest](ctx, client, want)
		if err != nil || got != want {
			t.Errorf("round trip of %+v = %+v, %v", want, got, err)
		}
	}

	tests := []struct {
		query, wantReason string
	}{
		{"limit=x", "test.bad_limit"},
		{"before=bad", "invalid_argument"},
		{"limit=%zz", "invalid_argument"},
		{"limit=0;x", "invalid_argument"},
		{"before=%zz&limit=7", "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/page?"+tt.query, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Reason string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_argument" || body.Error.Reason != tt.wantReason {
				t.Errorf("got %d %+v, want 400 invalid_argument %s", resp.StatusCode, body.Error, tt.wantReason)
			}
		})
	}
}
