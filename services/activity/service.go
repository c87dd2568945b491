// Package activity keeps each user's activity log: it consumes the events
// the other services publish (a login, an upload, a delete) and shows each
// user the log of their own account, newest first.
package activity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/events"
)

// Service is the business of activity logs, free of HTTP.
type Service interface {
	// List returns a page of the caller's log, newest first.
	List(ctx context.Context, req ListRequest) (Page, error)
}

// ListRequest asks for one page: up to Limit entries (0: DefaultLimit)
// older than the cursor Before (empty: from the newest).
type ListRequest struct {
	Limit  int
	Before string
}

// Page is one page of a log. Next, when not empty, is the Before of the
// page after it; empty means this page holds the oldest entry.
type Page struct {
	Activities []Activity `json:"activities"`
	Next       string     `json:"next,omitempty"`
}

// Activity is one entry of a log: the event as it was published.
type Activity struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor,omitempty"`
	Subject string          `json:"subject,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`

	// key is where the entry is stored, the cursor of what is older.
	key []byte
}

func activityOf(ev events.Event) Activity {
	return Activity{ID: ev.ID, Type: ev.Type, Time: ev.Time.UTC(), Actor: ev.Actor, Subject: ev.Subject, Payload: ev.Payload}
}

// Paging limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// The event types the service treats specially; every other type of the
// families it consumes (Types) is recorded as it comes.
const (
	TypeUserDeleted = "user.deleted"
)

// Types are the event families the service consumes.
var Types = []string{"user.>", "file.>"}

// The errors of the activity service; clients match them with errors.Is.
var (
	ErrBadLimit  = apierr.New(apierr.CodeInvalidArgument, "activity.bad_limit", fmt.Sprintf("limit must be a number from 1 to %d", MaxLimit))
	ErrBadCursor = apierr.New(apierr.CodeInvalidArgument, "activity.bad_cursor", "before is not a cursor this service gave out")
)

// logs implements Service over a store.
type logs struct {
	store *store
}

func newLogs(st *store) *logs { return &logs{store: st} }

// List implements Service. The caller is the token's account id, never
// a name: a name deleted and taken again sees nothing of the old log.
func (l *logs) List(ctx context.Context, req ListRequest) (Page, error) {
	claims, err := auth.FromContext(ctx)
	if err != nil {
		return Page{}, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return Page{}, fmt.Errorf("%w: got %d", ErrBadLimit, limit)
	}
	var before []byte
	if req.Before != "" {
		before, err = decodeCursor(req.Before)
		if err != nil {
			return Page{}, err
		}
	}
	entries, next, err := l.store.page(claims.UserID(), limit, before)
	if err != nil {
		return Page{}, err
	}
	return Page{Activities: entries, Next: encodeCursor(next)}, nil
}

// A cursor is the store key of the last entry of a page (the event's
// time, then its id) after a version byte, base64url. It is opaque to
// clients, and stays valid while the entry it names is deleted (the next
// page still begins after its place).
const cursorVersion = 1

func encodeCursor(key []byte) string {
	if key == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte{cursorVersion}, key...))
}

func decodeCursor(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+8+1 || len(b) > 1+8+128 || b[0] != cursorVersion {
		return nil, ErrBadCursor
	}
	key := b[1:]
	// An event id is printable and has no white space (events.Event.Validate).
	for _, c := range key[8:] {
		if c <= ' ' || c > '~' {
			return nil, ErrBadCursor
		}
	}
	return key, nil
}

// parseLimit reads the limit query parameter.
func parseLimit(r *ListRequest, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadLimit, v)
	}
	if n == 0 {
		// 0 would mean the default to List; asked for explicitly, it is
		// out of range.
		return fmt.Errorf("%w: got 0", ErrBadLimit)
	}
	r.Limit = n
	return nil
}

func formatLimit(r ListRequest) string {
	if r.Limit == 0 {
		return ""
	}
	return strconv.Itoa(r.Limit)
}
