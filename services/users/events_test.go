package users

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/events"
)

// recorder is a publisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// lines renders each event as "type actor subject payload".
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, ev := range r.events {
		out = append(out, fmt.Sprintf("%s %s %s %s", ev.Type, ev.Actor, ev.Subject, ev.Payload))
	}
	return out
}

func TestEventsOfAccounts(t *testing.T) {
	a, _ := newTestAccounts(t)
	rec := &recorder{}
	a.events = rec
	seed(t, a)
	ctx := context.Background()
	if _, err := a.Login(ctx, LoginRequest{Username: "alice", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	// A failed login and a refused deletion tell no one anything.
	if _, err := a.Login(ctx, LoginRequest{Username: "alice", Password: "wrong-pass-1"}); err == nil {
		t.Fatal("wrong password accepted")
	}
	admin := as(t, a, "admin", true)
	if _, err := a.DeleteUser(admin, DeleteUserRequest{Username: "nobody"}); err == nil {
		t.Fatal("deleted an account that does not exist")
	}
	if _, err := a.CreateUser(admin, CreateUserRequest{Username: "bob", Password: "bob-pass-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteUser(admin, DeleteUserRequest{Username: "alice"}); err != nil {
		t.Fatal(err)
	}

	id := func(name string) string {
		if name == "alice" {
			// Deleted by now: its id is in the deletion event.
			for _, ev := range rec.events {
				var p userEvent
				_ = json.Unmarshal(ev.Payload, &p)
				if p.Username == "alice" {
					return p.UserID
				}
			}
		}
		r, _, _ := a.store.get(name)
		return r.ID
	}
	adminID, aliceID, bobID := id("admin"), id("alice"), id("bob")
	want := []string{
		// The bootstrap has no actor; seed creates alice without one too.
		fmt.Sprintf(`user.created  admin {"username":"admin","user_id":%q,"display_name":"Administrator","admin":true}`, adminID),
		fmt.Sprintf(`user.created  alice {"username":"alice","user_id":%q,"display_name":"Alice"}`, aliceID),
		fmt.Sprintf(`user.login %s alice {"username":"alice","user_id":%q}`, aliceID, aliceID),
		fmt.Sprintf(`user.created %s bob {"username":"bob","user_id":%q,"display_name":"bob"}`, adminID, bobID),
		fmt.Sprintf(`user.deleted %s alice {"username":"alice","user_id":%q}`, adminID, aliceID),
	}
	got := rec.lines()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%s\nwant:\n%s", fmt.Sprintln(got), fmt.Sprintln(want))
	}
}
