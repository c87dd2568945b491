package events

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"plain", Event{ID: "x", Type: "file.written"}, true},
		{"one word", Event{ID: "x", Type: "ping"}, true},
		{"dash and digit", Event{ID: "x", Type: "user.password_changed-2"}, true},
		{"empty type", Event{ID: "x"}, false},
		{"upper case", Event{ID: "x", Type: "File.written"}, false},
		{"wildcard", Event{ID: "x", Type: "file.*"}, false},
		{"empty token", Event{ID: "x", Type: "file..written"}, false},
		{"space in id", Event{ID: "a b", Type: "file.written"}, false},
		{"payload not json", Event{ID: "x", Type: "file.written", Payload: json.RawMessage("{")}, false},
		{"payload json", Event{ID: "x", Type: "file.written", Payload: json.RawMessage(`{"size":3}`)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestFilterSubjects(t *testing.T) {
	tests := []struct {
		types []string
		want  []string
		ok    bool
	}{
		{nil, []string{"ocis.events.>"}, true},
		{[]string{"user.>", "file.*"}, []string{"ocis.events.user.>", "ocis.events.file.*"}, true},
		{[]string{"file.written", "file.deleted"}, []string{"ocis.events.file.written", "ocis.events.file.deleted"}, true},
		{[]string{"file.*", "file.written"}, nil, false},
		{[]string{">", "user.created"}, nil, false},
		{[]string{"file.>.x"}, nil, false},
		{[]string{"file.written", "file.written.big"}, []string{"ocis.events.file.written", "ocis.events.file.written.big"}, true},
	}
	for _, tt := range tests {
		got, err := filterSubjects(tt.types)
		if (err == nil) != tt.ok {
			t.Errorf("filterSubjects(%q) error %v, want ok %v", tt.types, err, tt.ok)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("filterSubjects(%q) = %q, want %q", tt.types, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("filterSubjects(%q) = %q, want %q", tt.types, got, tt.want)
			}
		}
	}
}

func TestNewID(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := NewID()
		if !shape.MatchString(id) {
			t.Fatalf("id %q is not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		// The time prefix never goes back.
		if id[:13] < prev {
			t.Fatalf("id %q sorts before the previous %q", id, prev)
		}
		prev = id[:13]
	}
}

func TestNewAndDecode(t *testing.T) {
	type written struct {
		Path string `json:"path"`
		Size int64  `json:"size"`
	}
	before := time.Now()
	ev, err := New("file.written", "alice", "/a.txt", written{Path: "/a.txt", Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == "" || ev.Time.Before(before.Add(-time.Second)) || ev.Time.Location() != time.UTC {
		t.Fatalf("New filled in %+v", ev)
	}
	var got written
	if err := ev.Decode(&got); err != nil || got.Size != 3 {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	if _, err := New("File", "", "", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New with a bad type: %v, want ErrInvalid", err)
	}
	if err := (Event{ID: "x", Type: "a"}).Decode(&got); err == nil {
		t.Fatal("Decode of an event without payload succeeded")
	}
}

func TestEnvelopeJSON(t *testing.T) {
	ev := Event{
		ID: "0190f6c2-8a4e-7b1c-9d2e-3f4a5b6c7d8e", Type: "file.written",
		Time:  time.Date(2025, 3, 1, 12, 0, 0, 123000000, time.UTC),
		Actor: "alice", Subject: "/docs/a.txt",
		Payload: json.RawMessage(`{"path":"/docs/a.txt","size":3,"etag":"\"abc\"","new":true}`),
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0190f6c2-8a4e-7b1c-9d2e-3f4a5b6c7d8e","type":"file.written","time":"2025-03-01T12:00:00.123Z","actor":"alice","subject":"/docs/a.txt","payload":{"path":"/docs/a.txt","size":3,"etag":"\"abc\"","new":true}}`
	if string(raw) != want {
		t.Fatalf("envelope\n got %s\nwant %s", raw, want)
	}
}

func TestPermanent(t *testing.T) {
	cause := errors.New("bad payload")
	err := Permanent(cause)
	var perm *PermanentError
	if !errors.As(err, &perm) || !errors.Is(err, cause) {
		t.Fatalf("Permanent(%v) = %v: not a PermanentError wrapping the cause", cause, err)
	}
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
}
