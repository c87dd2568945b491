package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string
		wantErr string // a substring; "" means valid
	}{
		{name: "file", path: "a.txt"},
		{name: "nested", path: "a/b/c.txt"},
		{name: "unicode", path: "dossier/résumé ✓.pdf"},
		{name: "dots inside names", path: "a..b/.hidden/x."},
		{name: "longest segment", path: strings.Repeat("s", MaxSegmentLen)},
		{name: "longest path", path: strings.Repeat("p/", MaxPathLen/2-1) + "pp"},
		{name: "empty", path: "", wantErr: "empty"},
		{name: "absolute", path: "/etc/passwd", wantErr: "absolute"},
		{name: "dot-dot", path: "a/../b", wantErr: `".."`},
		{name: "only dot-dot", path: "..", wantErr: `".."`},
		{name: "dot", path: "./a", wantErr: `"."`},
		{name: "empty segment", path: "a//b", wantErr: "empty segment"},
		{name: "trailing slash", path: "a/", wantErr: "empty segment"},
		{name: "NUL", path: "a\x00b", wantErr: "NUL"},
		{name: "backslash", path: `..\..\etc`, wantErr: "backslash"},
		{name: "newline", path: "a\nb", wantErr: "control"},
		{name: "DEL", path: "a\x7fb", wantErr: "control"},
		{name: "invalid UTF-8", path: "a\xffb", wantErr: "UTF-8"},
		{name: "segment too long", path: "a/" + strings.Repeat("s", MaxSegmentLen+1), wantErr: "segment of 256 bytes"},
		{name: "path too long", path: strings.Repeat("p/", MaxPathLen/2) + "p", wantErr: "4097 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPath(tc.path)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("checkPath = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkPath = %v, want %v mentioning %q", err, ErrInvalidPath, tc.wantErr)
			}
			if len(err.Error()) > 200 {
				t.Errorf("message of %d bytes echoes the path", len(err.Error()))
			}
		})
	}
}

func TestCheckDir(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: ""},
		{in: "a/", want: "a"},
		{in: "a", want: "a"},
		{in: "a/b/", want: "a/b"},
		{in: "/", wantErr: true},
		{in: "a//", wantErr: true},
		{in: "../", wantErr: true},
	} {
		got, err := checkDir(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("checkDir(%q) = (%q, %v), want %q (error %t)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestIsClean(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{path: "/api/v1/files/a/b", want: true},
		{path: "/api/v1/files/", want: true},
		{path: "/api/v1/files/a/", want: true},
		{path: "/api/v1/files/%2E%2E/x", want: true}, // refused later, by checkPath
		{path: "/api/v1/files//etc", want: false},
		{path: "/api/v1/files/a/../b", want: false},
		{path: "/api/v1/files/./b", want: false},
		{path: "/api/v1/files/a//", want: false},
	} {
		if got := isClean(tc.path); got != tc.want {
			t.Errorf("isClean(%q) = %t, want %t", tc.path, got, tc.want)
		}
	}
}

func TestEscapePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{in: "a/b.txt", want: "a/b.txt"},
		{in: "d ü/x#?%", want: "d%20%C3%BC/x%23%3F%25"},
		{in: "../x/./y", want: "%2E%2E/x/%2E/y"},
		{in: "dir/", want: "dir/"},
		{in: "a\x00b", want: "a%00b"},
	} {
		if got := escapePath(tc.in); got != tc.want {
			t.Errorf("escapePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
