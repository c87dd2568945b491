package events

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// appendEvent appends ev's JSON envelope to buf, as json.Marshal writes
// it, except that the payload goes in untouched rather than compacted.
// It is Publish's encoder: json.Marshal walks the struct by reflection and
// scans the payload once more to compact it, which made it the largest
// part of what publishing costs a request. The caller has validated ev
// (Validate), so the payload is JSON.
func appendEvent(buf []byte, ev Event) ([]byte, error) {
	if y := ev.Time.Year(); y < 0 || y > 9999 {
		return buf, fmt.Errorf("%w: %s: time %s is outside the years 0 to 9999", ErrInvalid, ev.Type, ev.Time)
	}
	buf = append(buf, `{"id":`...)
	buf = appendString(buf, ev.ID)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, ev.Type)
	buf = append(buf, `,"time":"`...)
	buf = ev.Time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, '"')
	if ev.Actor != "" {
		buf = append(buf, `,"actor":`...)
		buf = appendString(buf, ev.Actor)
	}
	if ev.Subject != "" {
		buf = append(buf, `,"subject":`...)
		buf = appendString(buf, ev.Subject)
	}
	if len(ev.Payload) > 0 {
		buf = append(buf, `,"payload":`...)
		buf = append(buf, ev.Payload...)
	}
	return append(buf, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does:
// quotes, backslashes and control characters escaped, <, > and & as
// \u00XX, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
