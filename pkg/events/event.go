package events

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SubjectPrefix starts the NATS subject of every event: an event of type
// "file.written" is published on "ocis.events.file.written".
const SubjectPrefix = "ocis.events."

// ErrInvalid is wrapped by every error about a malformed event or filter.
var ErrInvalid = errors.New("invalid event")

// Event is the envelope every event travels in, as JSON. Its fields are
// the contract between producers and consumers (docs/events.md); what an
// event says beyond them is in Payload, whose shape the event's type
// defines.
type Event struct {
	// ID is unique per event; the same event sent twice has the same ID.
	// Consumers use it to recognise a redelivery, and JetStream uses it
	// (the Nats-Msg-Id header) to drop a publisher's retry within its
	// duplicate window. NewID makes one; Publish fills it in when empty.
	ID string `json:"id"`
	// Type says what happened, as dot-separated lowercase words:
	// "user.created", "file.written". It is also the subject's tail, so
	// consumers filter on it ("file.*", "user.>").
	Type string `json:"type"`
	// Time is when it happened, in UTC; Publish fills it in when zero.
	Time time.Time `json:"time"`
	// Actor is the id of the user who made it happen; empty for the
	// system itself.
	Actor string `json:"actor,omitempty"`
	// Subject is what the event is about: a user name, a file path.
	Subject string `json:"subject,omitempty"`
	// Payload is the type's own JSON, stored and handed over as is.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// New returns an event of type typ with a fresh id, the current time and
// payload encoded as JSON (nil for none).
func New(typ, actor, subject string, payload any) (Event, error) {
	ev := Event{ID: NewID(), Type: typ, Time: time.Now().UTC(), Actor: actor, Subject: subject}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return Event{}, fmt.Errorf("%w: %s payload: %w", ErrInvalid, typ, err)
		}
		ev.Payload = raw
	}
	// The payload is json.Marshal's: no need to scan it again.
	return ev, ev.validateHead()
}

// Decode unmarshals the event's payload into v.
func (e Event) Decode(v any) error {
	if len(e.Payload) == 0 {
		return fmt.Errorf("event %s (%s) has no payload", e.ID, e.Type)
	}
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("event %s (%s) payload: %w", e.ID, e.Type, err)
	}
	return nil
}

// Validate checks what Publish needs: a type that makes a subject, an id
// that fits a header, a payload that is JSON.
func (e Event) Validate() error {
	if err := e.validateHead(); err != nil {
		return err
	}
	if len(e.Payload) > 0 && !json.Valid(e.Payload) {
		return fmt.Errorf("%w: %s payload is not JSON", ErrInvalid, e.Type)
	}
	return nil
}

// validateHead checks the type and the id.
func (e Event) validateHead() error {
	if err := validType(e.Type, false); err != nil {
		return err
	}
	if len(e.ID) > 128 || strings.ContainsAny(e.ID, " \t\r\n") {
		return fmt.Errorf("%w: id %q: at most 128 characters, no white space", ErrInvalid, e.ID)
	}
	return nil
}

// Subject is the NATS subject an event of type typ is published on.
func Subject(typ string) string { return SubjectPrefix + typ }

// validType checks a type, or with wildcards a filter: dot-separated
// tokens of [a-z0-9_-], where a filter may use "*" for one token and ">"
// as the last one for any rest.
func validType(typ string, wildcards bool) error {
	what := "type"
	if wildcards {
		what = "filter"
	}
	if typ == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	// Token by token, without splitting: Publish checks every event's
	// type.
	for rest := typ; ; {
		tok, tail, more := strings.Cut(rest, ".")
		if !(wildcards && (tok == "*" || tok == ">" && !more)) && !validToken(tok) {
			return fmt.Errorf("%w: %s %q: want dot-separated words of a-z, 0-9, _ and -", ErrInvalid, what, typ)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// validToken reports whether tok is a non-empty word of a-z, 0-9, _ and -.
func validToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return tok != ""
}

// NewID returns a new event id: 128 bits, of which the first 48 are the
// time in milliseconds and the rest random (the layout of a UUIDv7), so
// ids sort roughly by time, which keeps a store keyed by them compact.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(b[:6], ms[2:])
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// PermanentError marks a handler's error as one that no redelivery can
// cure (a payload that does not decode, an event about something that
// can never exist): the event is terminated at once and counted as a dead
// letter instead of being retried.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the consumer does not redeliver the event.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}
