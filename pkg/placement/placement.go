// Package placement decides on which storage instance each user's files
// live when several run, and remembers it.
//
// A user is placed at their first write, on one of the storage nodes
// running then (rendezvous hashing, Choose), and the choice is recorded in
// a JetStream key-value bucket (Store): key the account's immutable id,
// value the node's name. From then on every file request of that user goes
// to that node only; while it is down the user gets 503 unavailable, never
// a 404, an empty listing or a write that lands elsewhere, and a node that
// joins moves no one. Only an operator moves a user (`ocis storage
// placement set`). The proxy keeps a watched copy of the bucket (Placer);
// docs/distribution.md ("Storage placement") has the whole contract.
package placement

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// Errors a request meets when its user's storage cannot be decided or
// reached; all are 503 unavailable on the wire.
var (
	// ErrInstanceDown: the user is placed on a node whose storage does not
	// run now.
	ErrInstanceDown = apierr.New(apierr.CodeUnavailable, "placement.instance_down", "the storage instance holding this user's files is not running")
	// ErrUnknown: whether and where the user is placed cannot be looked
	// up now (NATS unreachable, the bucket not open yet).
	ErrUnknown = apierr.New(apierr.CodeUnavailable, "placement.unknown", "where this user's files live cannot be looked up now")
	// ErrNotRecorded: several storage instances run but this process has
	// no NATS to record placements in, so any choice would be a guess.
	ErrNotRecorded = apierr.New(apierr.CodeUnavailable, "placement.not_recorded", "several storage instances run and no NATS is configured to record where each user's files live")
)

// ErrInvalidKey is returned for a user id the bucket cannot hold as a key.
var ErrInvalidKey = errors.New("not a valid account id")

// ValidateUser checks that id can be a key of the bucket: 1 to 128 ASCII
// letters, digits, '_' or '-'. Ids are 32 hex digits today; the bucket
// allows a little more. (A loop, not a regexp: `{1,128}` compiles to 128
// copies of the class, about 1,700 allocations and half a millisecond at
// the init of every ocis process, `ocis version` included.)
func ValidateUser(id string) error {
	if len(id) < 1 || len(id) > 128 || strings.IndexFunc(id, notKeyRune) >= 0 {
		return fmt.Errorf("%w: %q", ErrInvalidKey, id)
	}
	return nil
}

// notKeyRune reports whether r may not appear in a user id used as a key.
func notKeyRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		return false
	}
	return true
}

// Record is one user's placement as the bucket holds it (JSON).
type Record struct {
	// Node is the stable name of the node whose storage holds the
	// user's files: addresses change across restarts, names do not.
	Node string `json:"node"`
	// Username is the account's name when it was placed, so an operator
	// can find a user by name; it is informational only.
	Username string `json:"username,omitempty"`
	// At is when the placement was made or last set.
	At time.Time `json:"at"`
	// By says who made it: "first write" by a proxy, "operator".
	By string `json:"by,omitempty"`
}

// decodeRecord reads a value of the bucket. A bare node name is accepted
// too, so that an operator may write one with the nats CLI.
func decodeRecord(value []byte) (Record, error) {
	var r Record
	s := strings.TrimSpace(string(value))
	if !strings.HasPrefix(s, "{") {
		r.Node = s
	} else if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("placement record: %w", err)
	}
	if r.Node == "" {
		return Record{}, errors.New("placement record names no node")
	}
	return r, nil
}

func (r Record) encode() []byte {
	b, _ := json.Marshal(r)
	return b
}

// Choose picks the node of nodes that user goes to, by rendezvous
// (highest random weight) hashing: each node scores hash(node, user) and
// the highest wins. A node joining or leaving changes the choice only of
// users for whom it scores highest, so choices spread evenly and move as
// little as they can — though a recorded placement never moves at all.
// It returns "" when nodes is empty.
func Choose(user string, nodes []string) string {
	var best string
	var bestScore uint64
	for _, n := range nodes {
		s := score(user, n)
		if best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}

func score(user, node string) uint64 {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(user))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
