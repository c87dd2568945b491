package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// The route fixture is the users fixture declared the way services declare
// their APIs: one Bind per endpoint, served and dialled from the same list.

type routeEndpoints struct {
	Get, Create, Delete, Echo, Whoami kitendpoint.Endpoint
}

type nameRequest struct {
	Name string `json:"-"`
}

func routeAPI(e *routeEndpoints) transport.API {
	name := func(r *nameRequest) *string { return &r.Name }
	return transport.API{
		transport.Bind(&e.Get, transport.Get[nameRequest, user]("/api/v1/users/{name}").Param("name", name)),
		transport.Bind(&e.Create, transport.Post[createUserRequest, user]("/api/v1/users").Status(http.StatusCreated)),
		transport.Bind(&e.Delete, transport.Delete[nameRequest, endpoint.Empty]("/api/v1/users/{name}").Param("name", name).Status(http.StatusNoContent)),
		transport.Bind(&e.Echo, transport.Post[createUserRequest, createUserRequest]("/api/v1/echo").Public()),
		transport.Bind(&e.Whoami, transport.Get[endpoint.Empty, string]("/api/v1/whoami").Public()),
	}
}

func newRouteServer(t *testing.T, trusted ...netip.Prefix) (*httptest.Server, routeEndpoints) {
	t.Helper()
	keys := newKeys(t, testSecret)
	server := routeEndpoints{
		Get:    endpoint.Typed(func(ctx context.Context, r nameRequest) (user, error) { return getUser(ctx, r.Name) }),
		Create: endpoint.Typed(createUser),
		Delete: endpoint.Typed(func(ctx context.Context, r nameRequest) (endpoint.Empty, error) { return deleteUser(ctx, r.Name) }),
		Echo:   endpoint.Typed(echo),
		Whoami: endpoint.Typed(func(ctx context.Context, _ endpoint.Empty) (string, error) { return transport.ClientAddrFrom(ctx), nil }),
	}
	rt := transport.NewRouter(log.NewNopLogger(), transport.JWT(keys), transport.TrustedProxies(trusted))
	routeAPI(&server).Serve(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)

	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var client routeEndpoints
	routeAPI(&client).Dial(srv.Client(), base)
	return srv, client
}

func TestRouteRoundTrip(t *testing.T) {
	_, c := newRouteServer(t)
	keys := newKeys(t, testSecret)
	ctx := transport.WithBearer(context.Background(), sign(t, keys, "alice", time.Hour))

	got, err := endpoint.Call[nameRequest, user](ctx, c.Get, nameRequest{Name: "carol smith"})
	if err != nil || got != (user{Name: "carol smith", Caller: "alice"}) {
		t.Errorf("get = %+v, %v; want carol smith as alice", got, err)
	}
	if _, err := endpoint.Call[nameRequest, user](ctx, c.Get, nameRequest{Name: "bob"}); !errors.Is(err, errUserNotFound) {
		t.Errorf("get bob: err = %v, want errUserNotFound across the wire", err)
	}
	created, err := endpoint.Call[createUserRequest, user](ctx, c.Create, createUserRequest{Name: "dave"})
	if err != nil || created.Name != "dave" {
		t.Errorf("create = %+v, %v", created, err)
	}
	if _, err := endpoint.Call[nameRequest, endpoint.Empty](ctx, c.Delete, nameRequest{Name: "dave"}); err != nil {
		t.Errorf("delete: %v", err)
	}
	// Public routes take no token.
	echoed, err := endpoint.Call[createUserRequest, createUserRequest](context.Background(), c.Echo, createUserRequest{Name: "x", Age: 3})
	if err != nil || echoed != (createUserRequest{Name: "x", Age: 3}) {
		t.Errorf("echo = %+v, %v", echoed, err)
	}
	if _, err := endpoint.Call[nameRequest, user](context.Background(), c.Get, nameRequest{Name: "alice"}); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Errorf("get without a token: err = %v, want unauthenticated", err)
	}
}

func TestRouteParamEscaping(t *testing.T) {
	route := transport.Get[nameRequest, user]("/api/v1/users/{name}").Param("name", func(r *nameRequest) *string { return &r.Name })
	files := transport.Get[nameRequest, user]("/api/v1/files/{path...}").Param("path", func(r *nameRequest) *string { return &r.Name })
	base, _ := url.Parse("http://127.0.0.1:1")
	for _, tc := range []struct {
		name  string
		route transport.Route[nameRequest, user]
		value string
		want  string
	}{
		{name: "plain", route: route, value: "alice", want: "/api/v1/users/alice"},
		{name: "slash is escaped in one segment", route: route, value: "a/b", want: "/api/v1/users/a%2Fb"},
		{name: "dot dot stays a segment", route: route, value: "..", want: "/api/v1/users/%2E%2E"},
		{name: "rest keeps slashes", route: files, value: "dir/a b.txt", want: "/api/v1/files/dir/a%20b.txt"},
		{name: "rest escapes dot segments", route: files, value: "dir/../x", want: "/api/v1/files/dir/%2E%2E/x"},
		{name: "rest may be empty", route: files, value: "", want: "/api/v1/files/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.route.URL(base, nameRequest{Name: tc.value})
			if err != nil {
				t.Fatal(err)
			}
			if got := u.EscapedPath(); got != tc.want {
				t.Errorf("path = %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := route.URL(base, nameRequest{}); !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Errorf("empty parameter: err = %v, want invalid_argument", err)
	}
}

func TestRouteClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		{name: "peer not trusted", xff: "192.0.2.7", want: "127.0.0.1"},
		{name: "trusted peer names the client", trusted: transport.DefaultTrustedProxies(), xff: "192.0.2.7", want: "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newRouteServer(t, tc.trusted...)
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/whoami", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-For", tc.xff)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got string
			if err := jsonDecode(resp, &got); err != nil || got != tc.want {
				t.Errorf("client address = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestAPIPrefixesAndPublic(t *testing.T) {
	var e routeEndpoints
	api := routeAPI(&e)
	if got, want := api.Prefixes(), []string{"/api/v1/echo", "/api/v1/users", "/api/v1/whoami"}; !slices.Equal(got, want) {
		t.Errorf("prefixes = %v, want %v", got, want)
	}
	if got, want := api.Public(), []string{"POST /api/v1/echo", "GET /api/v1/whoami"}; !slices.Equal(got, want) {
		t.Errorf("public = %v, want %v", got, want)
	}
	nested := transport.API{
		transport.Bind(&e.Get, transport.Get[endpoint.Empty, user]("/api/v1/users/me")),
		transport.Bind(&e.Echo, transport.Get[endpoint.Empty, user]("/api/v1/users")),
		transport.Bind(&e.Create, transport.Get[endpoint.Empty, user]("/api/v1/usersx/{id}")),
	}
	if got, want := nested.Prefixes(), []string{"/api/v1/users", "/api/v1/usersx"}; !slices.Equal(got, want) {
		t.Errorf("nested prefixes = %v, want %v", got, want)
	}
}

func TestRouteDeclarationMistakesPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{name: "param without wildcard", f: func() {
			transport.Get[nameRequest, user]("/api/v1/users").Param("name", func(r *nameRequest) *string { return &r.Name })
		}},
		{name: "path without slash", f: func() { transport.Get[nameRequest, user]("api") }},
		{name: "streamed route without a decoder", f: func() {
			var e kitendpoint.Endpoint
			transport.API{transport.Bind(&e, transport.Put[nameRequest, user]("/api/v1/blob").Stream())}.Serve(transport.NewRouter(log.NewNopLogger(), nil))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

func jsonDecode(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
