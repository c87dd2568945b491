package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/events"
)

func openTestStore(t *testing.T) *store {
	t.Helper()
	st, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.close() })
	return st
}

// base is the time of the first test event; each later one is a second on.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// event makes an event of typ by actor at base+sec seconds.
func event(t *testing.T, typ, actor, subject string, sec int, payload any) events.Event {
	t.Helper()
	ev, err := events.New(typ, actor, subject, payload)
	if err != nil {
		t.Fatal(err)
	}
	ev.Time = base.Add(time.Duration(sec) * time.Second)
	return ev
}

func apply(t *testing.T, st *store, evs ...events.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := st.apply(context.Background(), ev); err != nil {
			t.Fatalf("apply %s: %v", ev.Type, err)
		}
	}
}

// subjects lists the subjects of user's whole log, newest first.
func subjects(t *testing.T, st *store, user string) []string {
	t.Helper()
	entries, next, err := st.page(user, MaxLimit, nil)
	if err != nil || next != nil {
		t.Fatalf("page of %s: next %x, %v", user, next, err)
	}
	out := []string{}
	for _, a := range entries {
		out = append(out, a.Type+" "+a.Subject)
	}
	return out
}

func TestApplyRecordsEachEventOnce(t *testing.T) {
	st := openTestStore(t)
	ev := event(t, "file.written", "alice-id", "a.txt", 1, map[string]any{"path": "a.txt", "size": 3, "etag": `"x"`, "new": true})
	// The same event three times: redelivered after a lost ack, after a
	// crash, handed back by a stopping consumer.
	apply(t, st, ev, ev, ev)
	if got, want := subjects(t, st, "alice-id"), []string{"file.written a.txt"}; !slices.Equal(got, want) {
		t.Errorf("log = %q, want %q", got, want)
	}
	entries, _, _ := st.page("alice-id", 1, nil)
	got := entries[0]
	if got.ID != ev.ID || !got.Time.Equal(ev.Time) || got.Actor != "alice-id" || string(got.Payload) != string(ev.Payload) {
		t.Errorf("entry = %+v, want the event %+v", got, ev)
	}
}

func TestApplyRecipients(t *testing.T) {
	st := openTestStore(t)
	apply(t, st,
		event(t, "user.created", "", "admin", 0, map[string]any{"username": "admin", "user_id": "admin-id"}),
		event(t, "user.created", "admin-id", "bob", 1, map[string]any{"username": "bob", "user_id": "bob-id"}),
		event(t, "user.login", "bob-id", "bob", 2, map[string]any{"username": "bob", "user_id": "bob-id"}),
		event(t, "file.written", "bob-id", "b.txt", 3, nil),
	)
	tests := []struct {
		user string
		want []string
	}{
		// The bootstrap has no actor: the admin's log gets it as the
		// account it is about.
		{"admin-id", []string{"user.created bob", "user.created admin"}},
		{"bob-id", []string{"file.written b.txt", "user.login bob", "user.created bob"}},
		{"nobody", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			if got := subjects(t, st, tt.user); !slices.Equal(got, tt.want) {
				t.Errorf("log = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUserDeletedRemovesTheLogForGood(t *testing.T) {
	st := openTestStore(t)
	late := event(t, "file.written", "bob-id", "late.txt", 3, nil)
	apply(t, st,
		event(t, "file.written", "bob-id", "b.txt", 1, nil),
		event(t, "file.written", "carol-id", "c.txt", 2, nil),
		event(t, "user.deleted", "admin-id", "bob", 4, map[string]any{"username": "bob", "user_id": "bob-id"}),
		// Published before the deletion but delivered after it, as a
		// redelivery may be: it must not start bob's log again.
		late,
	)
	if got := subjects(t, st, "bob-id"); len(got) != 0 {
		t.Errorf("deleted account's log = %q, want none", got)
	}
	if got, want := subjects(t, st, "admin-id"), []string{"user.deleted bob"}; !slices.Equal(got, want) {
		t.Errorf("admin's log = %q, want %q", got, want)
	}
	if got, want := subjects(t, st, "carol-id"), []string{"file.written c.txt"}; !slices.Equal(got, want) {
		t.Errorf("another account's log = %q, want %q", got, want)
	}

	// Past keepMarks, marks and tombstones go; a newer tombstone stays.
	apply(t, st, event(t, "user.deleted", "admin-id", "dave", 10, map[string]any{"user_id": "dave-id"}))
	marks, tombstones, err := st.prune(base.Add(keepMarks + 5*time.Second))
	if err != nil || marks != 4 || tombstones != 1 {
		t.Errorf("prune = %d marks, %d tombstones, %v; want 4, 1 (bob's)", marks, tombstones, err)
	}
}

func TestPageNewestFirstWithCursor(t *testing.T) {
	st := openTestStore(t)
	const n = 7
	for i := range n {
		apply(t, st, event(t, "file.written", "alice-id", fmt.Sprintf("f%d", i), i, nil))
	}
	apply(t, st, event(t, "file.written", "bob-id", "bob.txt", 100, nil))

	var got []string
	var pages int
	var before []byte
	for {
		entries, next, err := st.page("alice-id", 3, before)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range entries {
			got = append(got, a.Subject)
		}
		if next == nil {
			break
		}
		before = next
	}
	if want := []string{"f6", "f5", "f4", "f3", "f2", "f1", "f0"}; !slices.Equal(got, want) || pages != 3 {
		t.Errorf("pages = %d with %q, want 3 with %q", pages, got, want)
	}

	// A page that ends exactly at the oldest entry says there is no more.
	entries, next, err := st.page("alice-id", n, nil)
	if len(entries) != n || next != nil || err != nil {
		t.Errorf("page of all = %d entries, next %x, %v; want %d and no next", len(entries), next, err, n)
	}
	// A cursor past the newest entry begins at the newest; one before
	// the oldest gives nothing.
	far := entryKey(events.Event{ID: "z", Time: base.Add(time.Hour)})
	if entries, _, _ := st.page("alice-id", 1, far); len(entries) != 1 || entries[0].Subject != "f6" {
		t.Errorf("page before a later cursor = %v, want f6", entries)
	}
	early := entryKey(events.Event{ID: "a", Time: base.Add(-time.Hour)})
	if entries, next, _ := st.page("alice-id", 5, early); len(entries) != 0 || next != nil {
		t.Errorf("page before an earlier cursor = %v, %x; want nothing", entries, next)
	}
}

func TestActivityJSON(t *testing.T) {
	st := openTestStore(t)
	apply(t, st, event(t, "file.deleted", "alice-id", "a.txt", 0, map[string]string{"path": "a.txt"}))
	entries, _, _ := st.page("alice-id", 1, nil)
	b, err := json.Marshal(Page{Activities: entries})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"activities":[{"id":%q,"type":"file.deleted","time":"2025-03-01T12:00:00Z","actor":"alice-id","subject":"a.txt","payload":{"path":"a.txt"}}]}`, entries[0].ID)
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
}
