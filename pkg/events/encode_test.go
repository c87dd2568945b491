package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestAppendEventIsJSONMarshal holds Publish's encoder to json.Marshal's
// output for the same envelope, strings that need escaping included.
func TestAppendEventIsJSONMarshal(t *testing.T) {
	when := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{name: "bare", ev: Event{ID: "1", Type: "user.created", Time: when}},
		{name: "whole", ev: Event{ID: NewID(), Type: "file.written", Time: when, Actor: "9f2c", Subject: "/docs/a.txt",
			Payload: json.RawMessage(`{"path":"/docs/a.txt","size":3,"etag":"\"5d41\"","new":true}`)}},
		{name: "whole seconds", ev: Event{ID: "2", Type: "x", Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}},
		{name: "another zone", ev: Event{ID: "3", Type: "x", Time: when.In(time.FixedZone("", 2*3600+30*60))}},
		{name: "escapes", ev: Event{ID: "4", Type: "x", Time: when, Actor: "a\"b\\c\nd\re\tf\bg\fh\x00i\x1fj",
			Subject: "<script>&amp;</script> caf\u00e9 \u2028\u2029 \U0001F600"}},
		{name: "invalid UTF-8", ev: Event{ID: "5", Type: "x", Time: when, Subject: "a\xffb\xc3(c\xe2\x82"}},
		{name: "payload array", ev: Event{ID: "6", Type: "x", Time: when, Payload: json.RawMessage(`[1,"two",null]`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendEvent(nil, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			var back Event
			if err := json.Unmarshal(got, &back); err != nil {
				t.Errorf("does not decode: %v", err)
			}
		})
	}
}

func TestAppendEventRefusesYearsJSONCannotHold(t *testing.T) {
	ev := Event{ID: "1", Type: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := appendEvent(nil, ev); !errors.Is(err, ErrInvalid) {
		t.Errorf("year 10000: %v, want ErrInvalid", err)
	}
}
