package benchkit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ocis-runtime/ocis/services/users"
)

// Login returns a bearer token of user from the users service, or a proxy
// in front of it, at base, through the service's own client.
func Login(ctx context.Context, hc *http.Client, base, user, password string) (string, error) {
	c, err := users.NewClient(base, hc)
	if err != nil {
		return "", err
	}
	tok, err := c.Login(ctx, users.LoginRequest{Username: user, Password: password})
	if err != nil {
		return "", fmt.Errorf("log in as %s at %s: %w", user, base, err)
	}
	return tok.Token, nil
}
