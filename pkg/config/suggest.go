package config

import (
	"fmt"
	"sort"
	"strings"
)

// UnknownKeyError is an OCIS_ key of a config file that no setting has:
// a typo there would otherwise be ignored without a word.
type UnknownKeyError struct {
	Key, File string
	// Suggestion is the known key closest to Key, when one is close.
	Suggestion string
}

func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("unknown key %s in config file %s", e.Key, e.File)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %s?", e.Suggestion)
	}
	return msg + " (every key is the env var of a flag: see `ocis server -h`)"
}

// unknownEnv is the warning about an OCIS_ variable of the environment
// that no setting has.
func unknownEnv(key, suggestion string) string {
	msg := fmt.Sprintf("unknown environment variable %s is ignored", key)
	if suggestion != "" {
		msg += fmt.Sprintf("; did you mean %s?", suggestion)
	}
	return msg
}

// Suggest returns the key of known closest to key when it is close enough
// to be a typo of it (a few letters added, dropped, changed or swapped),
// else "".
func Suggest(key string, known []string) string {
	sorted := append([]string(nil), known...)
	sort.Strings(sorted) // the same answer for a tie, whatever the order
	best, bestDist := "", -1
	for _, k := range sorted {
		d := editDistance(strings.ToUpper(key), k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	// Long keys share their OCIS_<SERVICE>_ part: allow more edits in
	// them, but never so many that any key would do.
	limit := max(2, len(key)/6)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and swaps of neighbours that turn
// one into the other.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
