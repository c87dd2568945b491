package users

import (
	"context"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// The events the users service publishes (docs/events.md). The actor is
// the account id of whoever made it happen (empty for the admin's
// bootstrap), the subject the username.
const (
	EventUserCreated = "user.created"
	EventUserDeleted = "user.deleted"
	EventUserLogin   = "user.login"
	// EventPasswordChanged follows a change or a reset of a password; the
	// account's older tokens are withdrawn by then.
	EventPasswordChanged = "user.password_changed"
)

// userEvent is the payload of every user.* event: the account it is
// about, by name and by id (what consumers key on; a name can be taken
// again, an id never).
type userEvent struct {
	Username    string `json:"username"`
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
}

// publish tells the other services what happened to r; it never blocks
// and never fails the request (service.Publish).
func (a *accounts) publish(ctx context.Context, typ, actor string, r record) {
	ev := userEvent{Username: r.Username, UserID: r.ID}
	if typ == EventUserCreated {
		ev.DisplayName, ev.Admin = r.DisplayName, r.Admin
	}
	service.Publish(ctx, a.logger, a.events, typ, actor, r.Username, ev)
}
