package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// The fixture is a tiny users service built the way real services are:
// typed methods, endpoints through Typed, routes on a Router.

const testSecret = "test-secret-of-32-bytes-or-so!!!"

var (
	errUserNotFound = apierr.New(apierr.CodeNotFound, "test.user_not_found", "user not found")
	errUserExists   = apierr.New(apierr.CodeConflict, "test.user_exists", "user exists")
)

type user struct {
	Name   string `json:"name"`
	Caller string `json:"caller,omitempty"`
}

type createUserRequest struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func getUser(ctx context.Context, name string) (user, error) {
	switch name {
	case "bob":
		return user{}, fmt.Errorf("%w: %s", errUserNotFound, name)
	case "boom":
		// An internal error whose text must never leave the process.
		return user{}, errors.New("open /var/lib/ocis/users.db: permission denied")
	}
	claims, err := auth.FromContext(ctx)
	if err != nil {
		return user{}, err
	}
	return user{Name: name, Caller: claims.Username()}, nil
}

func createUser(_ context.Context, req createUserRequest) (user, error) {
	if req.Name == "taken" {
		return user{}, fmt.Errorf("%w: %s", errUserExists, req.Name)
	}
	return user{Name: req.Name}, nil
}

func deleteUser(context.Context, string) (endpoint.Empty, error) { return endpoint.Empty{}, nil }

func echo(_ context.Context, req createUserRequest) (createUserRequest, error) { return req, nil }

func pathName(r *http.Request) string { return r.PathValue("name") }

// smallLimit is the body limit of the /api/v1/small route.
const smallLimit = 32

func newKeys(t *testing.T, secret string) *auth.Keys {
	t.Helper()
	keys, err := auth.NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func newRouter(keys *auth.Keys) *transport.Router {
	rt := transport.NewRouter(log.NewNopLogger(), transport.JWT(keys))
	rt.Handle("GET /api/v1/users/{name}", endpoint.Typed(getUser), transport.NoBody(pathName))
	rt.Handle("DELETE /api/v1/users/{name}", endpoint.Typed(deleteUser), transport.NoBody(pathName), transport.Status(http.StatusNoContent))
	rt.Handle("POST /api/v1/users", endpoint.Typed(createUser), transport.DecodeJSON[createUserRequest], transport.Status(http.StatusCreated))
	rt.Handle("POST /api/v1/echo", endpoint.Typed(echo), transport.DecodeJSON[createUserRequest], transport.Public())
	rt.Handle("POST /api/v1/small", endpoint.Typed(echo), transport.DecodeJSON[createUserRequest], transport.Public(), transport.MaxBody(smallLimit))
	rt.Handle("POST /api/v1/small-protected", endpoint.Typed(echo), transport.DecodeJSON[createUserRequest], transport.MaxBody(smallLimit))
	return rt
}

func sign(t *testing.T, keys *auth.Keys, username string, ttl time.Duration) string {
	t.Helper()
	token, _, err := keys.Sign(auth.Identity{ID: username, Name: username}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// wireError is the error shape of DESIGN.md, decoded independently of the
// package's own types.
type wireError struct {
	Error struct {
		Code    string `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeWireError(t *testing.T, body []byte) wireError {
	t.Helper()
	var got wireError
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error answer is not JSON: %v: %q", err, body)
	}
	return got
}
