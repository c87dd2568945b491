package registry

import (
	"net/http"
	"strings"
)

// pattern is a route pattern as http.ServeMux writes it, "POST /api/v1/tokens"
// or "GET /api/v1/files/{path...}", parsed once so that matching a request
// against it allocates nothing: the proxy asks on every request.
type pattern struct {
	text   string
	method string // "" matches every method
	segs   []string
	// open is set when the path ends in "/" (or "{name...}"): the pattern
	// matches every path below it too.
	open bool
}

// parsePattern parses "[METHOD ]/path"; host-qualified patterns are not
// routes a service declares.
func parsePattern(s string) (pattern, bool) {
	p := pattern{text: s}
	path := s
	if method, rest, ok := strings.Cut(s, " "); ok {
		p.method, path = method, strings.TrimLeft(rest, " ")
	}
	if !strings.HasPrefix(path, "/") {
		return pattern{}, false
	}
	path = path[1:]
	if strings.HasSuffix(path, "/{$}") || path == "{$}" {
		path = strings.TrimSuffix(strings.TrimSuffix(path, "{$}"), "/")
		p.segs = append(strings.Split(path, "/"), "")
		if path == "" {
			p.segs = []string{""}
		}
		return p, true
	}
	p.segs = strings.Split(path, "/")
	last := p.segs[len(p.segs)-1]
	switch {
	case last == "":
		p.open = true
		p.segs = p.segs[:len(p.segs)-1]
	case strings.HasPrefix(last, "{") && strings.HasSuffix(last, "...}"):
		p.open = true
		p.segs = p.segs[:len(p.segs)-1]
	}
	return p, true
}

// match reports whether a request of method for path matches the pattern:
// GET answers HEAD too, "{name}" takes one non-empty segment, and an open
// pattern takes whatever follows.
func (p pattern) match(method, path string) bool {
	if p.method != "" && p.method != method && (p.method != http.MethodGet || method != http.MethodHead) {
		return false
	}
	if !strings.HasPrefix(path, "/") {
		return false
	}
	rest := path[1:]
	for i, seg := range p.segs {
		var got string
		var more bool
		got, rest, more = strings.Cut(rest, "/")
		wildcard := strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
		switch {
		case wildcard && got == "":
			return false
		case !wildcard && got != seg:
			return false
		}
		last := i == len(p.segs)-1
		if !more {
			// The path ends here: an exact pattern must end too; an open
			// one wants its slash ("/api/v1/files" is not under
			// "/api/v1/files/").
			return last && !p.open
		}
		if last {
			return p.open
		}
	}
	// Only a pattern of no segments ("/" or "/{path...}") gets here.
	return p.open || rest == ""
}
