package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
)

func TestUploadDownload(t *testing.T) {
	e := newTestEnv(t, 0)
	alice := e.as(t, "alice")
	first := pseudoRandom(1<<20+7, 1)
	second := pseudoRandom(4099, 2)

	for _, tc := range []struct {
		name        string
		path        string
		data        []byte
		size        int64 // -1: sent without a length
		wantCreated bool
	}{
		{name: "new file", path: "docs/report.bin", data: first, size: int64(len(first)), wantCreated: true},
		{name: "replace", path: "docs/report.bin", data: second, size: int64(len(second)), wantCreated: false},
		{name: "unknown length", path: "stream.bin", data: first, size: -1, wantCreated: true},
		{name: "empty file", path: "empty", data: nil, size: 0, wantCreated: true},
		{name: "unicode and spaces", path: "d ü/ä b#?.txt", data: []byte("hi"), size: 2, wantCreated: true},
		{name: "longest segment", path: strings.Repeat("s", MaxSegmentLen), data: []byte("x"), size: 1, wantCreated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, created, err := e.client.Upload(alice, tc.path, bytes.NewReader(tc.data), tc.size, UploadOptions{})
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			if created != tc.wantCreated {
				t.Errorf("created = %t, want %t", created, tc.wantCreated)
			}
			if got.Path != tc.path || got.Size != int64(len(tc.data)) || got.ETag != etagOf(tc.data) || got.MTime.IsZero() {
				t.Errorf("file = %+v, want path %q, size %d, etag %s and an mtime", got, tc.path, len(tc.data), etagOf(tc.data))
			}
			body, info := e.download(t, "alice", tc.path)
			if etagOf(body) != etagOf(tc.data) {
				t.Errorf("downloaded %d bytes with sha256 %s, want %d with %s", len(body), etagOf(body), len(tc.data), etagOf(tc.data))
			}
			if info.File.ETag != got.ETag || info.File.Size != got.Size || info.Partial || !info.File.MTime.Equal(got.MTime.Truncate(1e9)) {
				t.Errorf("download info = %+v, want it to describe %+v", info, got)
			}
		})
	}
	if left := e.tmpEntries(t); len(left) != 0 {
		t.Errorf("tmp/ holds %v after the uploads", left)
	}
}

func TestPutStatusAndHeaders(t *testing.T) {
	e := newTestEnv(t, 0)
	for _, tc := range []struct {
		name       string
		body       string
		wantStatus int
	}{
		{name: "create", body: "one", wantStatus: http.StatusCreated},
		{name: "replace", body: "two", wantStatus: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, http.MethodPut, "/api/v1/files/dir/f.txt", "alice", strings.NewReader(tc.body), nil)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", a.status, a.body, tc.wantStatus)
			}
			want := etagOf([]byte(tc.body))
			if got := a.header.Get("ETag"); got != want {
				t.Errorf("ETag = %s, want %s", got, want)
			}
			var fields map[string]any
			if err := json.Unmarshal(a.body, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"path", "size", "etag", "mtime"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("answer %s lacks %q", a.body, k)
				}
			}
			if fields["etag"] != want || fields["path"] != "dir/f.txt" {
				t.Errorf("answer = %s, want path dir/f.txt and etag %s", a.body, want)
			}
		})
	}
}

func TestDownloadConditionsAndRanges(t *testing.T) {
	e := newTestEnv(t, 0)
	data := pseudoRandom(1000, 3)
	fi := e.upload(t, "alice", "f.bin", data)
	first := e.do(t, http.MethodGet, "/api/v1/files/f.bin", "alice", nil, nil)
	lastModified := first.header.Get("Last-Modified")
	if lastModified == "" {
		t.Fatal("no Last-Modified")
	}

	for _, tc := range []struct {
		name             string
		method           string
		header           http.Header
		wantStatus       int
		wantBody         []byte
		wantCode         string
		wantMessage      string
		wantContentRange string
	}{
		{name: "whole", method: http.MethodGet, wantStatus: http.StatusOK, wantBody: data},
		{name: "range", method: http.MethodGet, header: http.Header{"Range": {"bytes=10-19"}}, wantStatus: http.StatusPartialContent, wantBody: data[10:20], wantContentRange: "bytes 10-19/1000"},
		{name: "suffix range", method: http.MethodGet, header: http.Header{"Range": {"bytes=-5"}}, wantStatus: http.StatusPartialContent, wantBody: data[995:], wantContentRange: "bytes 995-999/1000"},
		{name: "open range", method: http.MethodGet, header: http.Header{"Range": {"bytes=990-"}}, wantStatus: http.StatusPartialContent, wantBody: data[990:], wantContentRange: "bytes 990-999/1000"},
		{name: "range past the end", method: http.MethodGet, header: http.Header{"Range": {"bytes=2000-"}}, wantStatus: http.StatusRequestedRangeNotSatisfiable, wantCode: "invalid_argument", wantMessage: "bytes */1000"},
		{name: "range not a range", method: http.MethodGet, header: http.Header{"Range": {"bytes=abc"}}, wantStatus: http.StatusRequestedRangeNotSatisfiable, wantCode: "invalid_argument", wantMessage: "not a byte range"},
		{name: "range beyond int64", method: http.MethodGet, header: http.Header{"Range": {"bytes=0-9223372036854775808"}}, wantStatus: http.StatusRequestedRangeNotSatisfiable, wantCode: "invalid_argument", wantMessage: "not a byte range"},
		{name: "if-none-match current", method: http.MethodGet, header: http.Header{"If-None-Match": {fi.ETag}}, wantStatus: http.StatusNotModified, wantBody: []byte{}},
		{name: "if-none-match other", method: http.MethodGet, header: http.Header{"If-None-Match": {`"other"`}}, wantStatus: http.StatusOK, wantBody: data},
		{name: "if-modified-since", method: http.MethodGet, header: http.Header{"If-Modified-Since": {lastModified}}, wantStatus: http.StatusNotModified, wantBody: []byte{}},
		{name: "if-match other", method: http.MethodGet, header: http.Header{"If-Match": {`"other"`}}, wantStatus: http.StatusPreconditionFailed, wantCode: "precondition_failed"},
		{name: "if-match current with range", method: http.MethodGet, header: http.Header{"If-Match": {fi.ETag}, "Range": {"bytes=0-1"}}, wantStatus: http.StatusPartialContent, wantBody: data[:2], wantContentRange: "bytes 0-1/1000"},
		{name: "head", method: http.MethodHead, wantStatus: http.StatusOK, wantBody: []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, tc.method, "/api/v1/files/f.bin", "alice", nil, tc.header)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", a.status, a.body, tc.wantStatus)
			}
			if tc.wantCode != "" {
				if got := a.code(); got != tc.wantCode {
					t.Errorf("code = %q in %s, want %q", got, a.body, tc.wantCode)
				}
				if !bytes.Contains(a.body, []byte(tc.wantMessage)) {
					t.Errorf("body %s lacks %q", a.body, tc.wantMessage)
				}
				return
			}
			if !bytes.Equal(a.body, tc.wantBody) {
				t.Errorf("body = %d bytes, want %d", len(a.body), len(tc.wantBody))
			}
			if got := a.header.Get("Content-Range"); got != tc.wantContentRange {
				t.Errorf("Content-Range = %q, want %q", got, tc.wantContentRange)
			}
			if got := a.header.Get("ETag"); got != fi.ETag {
				t.Errorf("ETag = %q, want %q", got, fi.ETag)
			}
			if a.status == http.StatusOK {
				if got := a.header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("Content-Type = %q", got)
				}
				if got := a.header.Get("Content-Length"); got != "1000" {
					t.Errorf("Content-Length = %q, want 1000", got)
				}
			}
		})
	}

	t.Run("client range", func(t *testing.T) {
		rc, info, err := e.client.Download(e.as(t, "alice"), "f.bin", "bytes=100-199")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[100:200]) || !info.Partial || info.Length != 100 || info.File.Size != 1000 || info.ContentRange != "bytes 100-199/1000" {
			t.Errorf("got %d bytes, info %+v; want bytes 100-199 of 1000", len(got), info)
		}
	})
	t.Run("client range not satisfiable", func(t *testing.T) {
		_, _, err := e.client.Download(e.as(t, "alice"), "f.bin", "bytes=5000-")
		if !errors.Is(err, ErrBadRange) {
			t.Errorf("err = %v, want %v", err, ErrBadRange)
		}
	})
}

func TestConditionalUpload(t *testing.T) {
	e := newTestEnv(t, 0)
	v1 := []byte("version one")
	fi := e.upload(t, "alice", "a.txt", v1)
	ctx := e.as(t, "alice")

	for _, tc := range []struct {
		name        string
		path        string
		opts        UploadOptions
		wantErr     error
		wantCreated bool
	}{
		{name: "if-match other etag", path: "a.txt", opts: UploadOptions{IfMatch: `"0000"`}, wantErr: ErrPrecondition},
		{name: "if-match weak etag", path: "a.txt", opts: UploadOptions{IfMatch: "W/" + fi.ETag}, wantErr: ErrPrecondition},
		{name: "if-match absent file", path: "absent.txt", opts: UploadOptions{IfMatch: fi.ETag}, wantErr: ErrPrecondition},
		{name: "if-match any, absent file", path: "absent.txt", opts: UploadOptions{IfMatch: "*"}, wantErr: ErrPrecondition},
		{name: "if-none-match any, existing", path: "a.txt", opts: UploadOptions{IfNoneMatch: "*"}, wantErr: ErrPrecondition},
		{name: "if-none-match current etag", path: "a.txt", opts: UploadOptions{IfNoneMatch: fi.ETag}, wantErr: ErrPrecondition},
		{name: "if-none-match any, new", path: "b.txt", opts: UploadOptions{IfNoneMatch: "*"}, wantCreated: true},
		{name: "if-match current etag", path: "a.txt", opts: UploadOptions{IfMatch: fi.ETag}},
		{name: "if-match list holding it", path: "b.txt", opts: UploadOptions{IfMatch: `"x", ` + etagOf([]byte("new"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.record(t, "alice", tc.path)
			got, created, err := e.client.Upload(ctx, tc.path, strings.NewReader("new"), 3, tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if apierr.CodeOf(err) != apierr.CodePreconditionFailed {
					t.Errorf("code = %s, want precondition_failed", apierr.CodeOf(err))
				}
				after := e.record(t, "alice", tc.path)
				if after != before {
					t.Errorf("metadata changed from %+v to %+v by a refused upload", before, after)
				}
				return
			}
			if created != tc.wantCreated || got.ETag != etagOf([]byte("new")) {
				t.Errorf("got (%+v, created %t), want the new content, created %t", got, created, tc.wantCreated)
			}
		})
	}
	if _, _, err := e.client.Download(ctx, "absent.txt", ""); !errors.Is(err, ErrFileNotFound) {
		t.Errorf("a refused If-Match upload left absent.txt: %v", err)
	}
	if left := e.tmpEntries(t); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
	// The same over raw HTTP: the status is 412.
	a := e.do(t, http.MethodPut, "/api/v1/files/a.txt", "alice", strings.NewReader("x"), http.Header{"If-None-Match": {"*"}})
	if a.status != http.StatusPreconditionFailed || a.code() != "precondition_failed" {
		t.Errorf("PUT If-None-Match * on a file = %d %s, want 412 precondition_failed", a.status, a.body)
	}
}

func TestList(t *testing.T) {
	e := newTestEnv(t, 0)
	files := map[string][]byte{
		"a.txt":          []byte("a"),
		"docs/b.txt":     []byte("bb"),
		"docs/sub/c.txt": []byte("ccc"),
		"docs/a-b.txt":   []byte("dddd"),
	}
	info := map[string]FileInfo{}
	for p, data := range files {
		info[p] = e.upload(t, "alice", p, data)
	}
	// An empty directory: what deleting its only file leaves.
	e.upload(t, "alice", "docs/empty/x", []byte("x"))
	if err := e.client.Delete(e.as(t, "alice"), "docs/empty/x"); err != nil {
		t.Fatal(err)
	}
	file := func(p string) Entry { return Entry{FileInfo: info[p]} }
	dir := func(p string) Entry { return Entry{FileInfo: FileInfo{Path: p}, Dir: true} }

	for _, tc := range []struct {
		name string
		dir  string
		want Listing
	}{
		{name: "root", dir: "", want: Listing{Path: "", Entries: []Entry{file("a.txt"), dir("docs/")}}},
		{name: "nested", dir: "docs/", want: Listing{Path: "docs/", Entries: []Entry{file("docs/a-b.txt"), file("docs/b.txt"), dir("docs/empty/"), dir("docs/sub/")}}},
		{name: "without the slash", dir: "docs", want: Listing{Path: "docs/", Entries: []Entry{file("docs/a-b.txt"), file("docs/b.txt"), dir("docs/empty/"), dir("docs/sub/")}}},
		{name: "deeper", dir: "docs/sub/", want: Listing{Path: "docs/sub/", Entries: []Entry{file("docs/sub/c.txt")}}},
		{name: "empty directory", dir: "docs/empty/", want: Listing{Path: "docs/empty/", Entries: []Entry{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.client.List(e.as(t, "alice"), tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got.Entries {
				// JSON carries times in UTC; compare instants.
				got.Entries[i].MTime = got.Entries[i].MTime.UTC()
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("listing = %+v\nwant %+v", got, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name       string
		path       string
		user       string
		wantStatus int
		wantCode   string
		wantBody   string // a substring of the JSON answer
	}{
		{name: "wire shape", path: "/api/v1/files/docs/", user: "alice", wantStatus: 200, wantBody: `{"path":"docs/empty/","dir":true}`},
		{name: "root without the slash", path: "/api/v1/files", user: "alice", wantStatus: 200, wantBody: `{"path":"docs/","dir":true}`},
		{name: "root with the slash", path: "/api/v1/files/", user: "alice", wantStatus: 200, wantBody: `"path":"a.txt","size":1,"etag":"\"`},
		{name: "new user's root", path: "/api/v1/files/", user: "bob", wantStatus: 200, wantBody: `{"path":"","entries":[]}`},
		{name: "missing directory", path: "/api/v1/files/nope/", user: "alice", wantStatus: 404, wantCode: "not_found"},
		{name: "missing directory of a new user", path: "/api/v1/files/nope/", user: "bob", wantStatus: 404, wantCode: "not_found"},
		{name: "a file as a directory", path: "/api/v1/files/a.txt/", user: "alice", wantStatus: 404, wantCode: "not_found"},
		{name: "a directory as a file", path: "/api/v1/files/docs", user: "alice", wantStatus: 404, wantCode: "not_found", wantBody: `list it as \"docs/\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, http.MethodGet, tc.path, tc.user, nil, nil)
			if a.status != tc.wantStatus || a.code() != tc.wantCode {
				t.Fatalf("GET %s = %d %s, want %d %q", tc.path, a.status, a.body, tc.wantStatus, tc.wantCode)
			}
			if !strings.Contains(string(a.body), tc.wantBody) {
				t.Errorf("answer %s lacks %s", a.body, tc.wantBody)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	e := newTestEnv(t, 0)
	for _, p := range []string{"f.txt", "full/g.txt", "twice.txt"} {
		e.upload(t, "alice", p, []byte(p))
	}
	for _, p := range []string{"empty1/x", "empty2/x"} {
		e.upload(t, "alice", p, []byte(p))
		if err := e.client.Delete(e.as(t, "alice"), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name       string
		path       string
		wantStatus int
		wantCode   string
	}{
		{name: "file", path: "f.txt", wantStatus: http.StatusNoContent},
		{name: "file again", path: "f.txt", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "absent", path: "nope.txt", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "in an absent directory", path: "nope/x", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "non-empty directory", path: "full", wantStatus: http.StatusConflict, wantCode: "conflict"},
		{name: "non-empty directory with slash", path: "full/", wantStatus: http.StatusConflict, wantCode: "conflict"},
		{name: "empty directory", path: "empty1", wantStatus: http.StatusNoContent},
		{name: "empty directory with slash", path: "empty2/", wantStatus: http.StatusNoContent},
		{name: "file with a slash", path: "twice.txt/", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "the root", path: "", wantStatus: http.StatusBadRequest, wantCode: "invalid_argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(t, http.MethodDelete, "/api/v1/files/"+tc.path, "alice", nil, nil)
			if a.status != tc.wantStatus || a.code() != tc.wantCode {
				t.Errorf("DELETE %s = %d %s, want %d %q", tc.path, a.status, a.body, tc.wantStatus, tc.wantCode)
			}
		})
	}
	got, err := e.client.List(e.as(t, "alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, en := range got.Entries {
		paths = append(paths, en.Path)
	}
	if want := []string{"full/", "twice.txt"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("left = %v, want %v", paths, want)
	}
	if err := e.client.Delete(e.as(t, "alice"), "f.txt"); !errors.Is(err, ErrFileNotFound) {
		t.Errorf("client delete of a deleted file: err = %v, want %v", err, ErrFileNotFound)
	}
	if err := e.client.Delete(e.as(t, "alice"), "full"); !errors.Is(err, ErrDirNotEmpty) {
		t.Errorf("client delete of a full directory: err = %v, want %v", err, ErrDirNotEmpty)
	}
}

func TestQuota(t *testing.T) {
	const quota = 1000
	e := newTestEnv(t, quota)
	alice := e.as(t, "alice")
	bytesOf := func(n int) []byte { return bytes.Repeat([]byte{'q'}, n) }

	for _, tc := range []struct {
		name    string
		user    string
		path    string
		size    int
		unsized bool // sent without a length: caught while streaming
		wantErr error
	}{
		{name: "larger than the quota", path: "big", size: quota + 1, wantErr: ErrFileTooLarge},
		{name: "larger than the quota, streamed", path: "big", size: quota + 1, unsized: true, wantErr: ErrFileTooLarge},
		{name: "first file", path: "a", size: 600},
		{name: "does not fit", path: "b", size: 500, wantErr: ErrQuotaExceeded},
		{name: "does not fit, streamed", path: "b", size: 500, unsized: true, wantErr: ErrQuotaExceeded},
		{name: "larger than the quota, with files", path: "b", size: quota + 1, wantErr: ErrFileTooLarge},
		{name: "fills it exactly", path: "b", size: 400},
		{name: "replace counts the old size", path: "a", size: 600},
		{name: "replace that grows past it", path: "a", size: 601, wantErr: ErrQuotaExceeded},
		{name: "replace that grows past it, streamed", path: "a", size: 601, unsized: true, wantErr: ErrQuotaExceeded},
		{name: "another user has their own", user: "bob", path: "a", size: quota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := alice
			if tc.user != "" {
				ctx = e.as(t, tc.user)
			}
			size := int64(tc.size)
			var body io.Reader = bytes.NewReader(bytesOf(tc.size))
			if tc.unsized {
				size, body = -1, io.MultiReader(body) // hides the length
			}
			before := e.record(t, "alice", tc.path)
			_, _, err := e.client.Upload(ctx, tc.path, body, size, UploadOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if left := e.tmpEntries(t); len(left) != 0 {
				t.Errorf("tmp/ holds %v", left)
			}
			if tc.wantErr == nil {
				return
			}
			after := e.record(t, "alice", tc.path)
			if before != after {
				t.Errorf("metadata changed from %+v to %+v", before, after)
			}
			if rc, info, err := e.client.Download(alice, tc.path, ""); err == nil {
				rc.Close()
				if info.File.Size == int64(tc.size) {
					t.Errorf("the refused upload is on disk: %+v", info)
				}
			}
		})
	}

	t.Run("status codes", func(t *testing.T) {
		for _, tc := range []struct {
			size       int
			wantStatus int
			wantCode   string
		}{
			{size: quota + 1, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
			{size: 1, wantStatus: http.StatusInsufficientStorage, wantCode: "insufficient_storage"},
		} {
			a := e.do(t, http.MethodPut, "/api/v1/files/c", "alice", bytes.NewReader(bytesOf(tc.size)), nil)
			if a.status != tc.wantStatus || a.code() != tc.wantCode {
				t.Errorf("PUT of %d bytes = %d %s, want %d %s", tc.size, a.status, a.body, tc.wantStatus, tc.wantCode)
			}
		}
	})

	t.Run("delete frees space", func(t *testing.T) {
		if err := e.client.Delete(alice, "b"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.client.Upload(alice, "c", bytes.NewReader(bytesOf(400)), 400, UploadOptions{}); err != nil {
			t.Errorf("upload after delete: %v", err)
		}
		if used, _ := e.files.store.usage("alice"); used != 1000 {
			t.Errorf("usage = %d, want 1000", used)
		}
	})
}

func TestPathAttacks(t *testing.T) {
	e := newTestEnv(t, 0)
	e.upload(t, "alice", "a/b", []byte("b"))
	seg := strings.Repeat("d", 200)
	var long []string
	for n := 0; n <= MaxPathLen; n += len(seg) + 1 {
		long = append(long, seg)
	}
	longPath := strings.Join(long, "/")

	for _, tc := range []struct {
		name string
		path string // raw, after /api/v1/files/
	}{
		{name: "dot-dot", path: "a/../b"},
		{name: "leading dot-dot", path: "../users"},
		{name: "trailing dot-dot", path: "a/.."},
		{name: "escaped dot-dot", path: "a/%2E%2E/b"},
		{name: "escaped leading dot-dot", path: "%2e%2e/x"},
		{name: "dot", path: "a/./b"},
		{name: "absolute", path: "/etc/passwd"},
		{name: "escaped absolute", path: "%2Fetc%2Fpasswd"},
		{name: "empty segment", path: "a//b"},
		{name: "escaped empty segment", path: "a%2F%2Fb"},
		{name: "NUL", path: "a%00b"},
		{name: "backslash", path: "a%5Cb"},
		{name: "backslash dot-dot", path: "..%5C..%5Cetc%5Cpasswd"},
		{name: "newline", path: "a%0Ab"},
		{name: "segment over 255 bytes", path: strings.Repeat("s", MaxSegmentLen+1)},
		{name: "path over 4096 bytes", path: longPath},
		{name: "invalid UTF-8", path: "a%FFb"},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				var body io.Reader
				if method == http.MethodPut {
					body = strings.NewReader("pwned")
				}
				a := e.do(t, method, "/api/v1/files/"+tc.path, "alice", body, nil)
				if a.status != http.StatusBadRequest || a.code() != "invalid_argument" {
					t.Errorf("%s %s = %d %s, want 400 invalid_argument", method, tc.path, a.status, a.body)
				}
			})
		}
	}

	t.Run("directory listings", func(t *testing.T) {
		for _, p := range []string{"a/../", "a//", "%2E%2E/", "a%00/", "/etc/"} {
			a := e.do(t, http.MethodGet, "/api/v1/files/"+p, "alice", nil, nil)
			if a.status != http.StatusBadRequest || a.code() != "invalid_argument" {
				t.Errorf("GET %s = %d %s, want 400 invalid_argument", p, a.status, a.body)
			}
		}
	})
	t.Run("trailing slash on upload", func(t *testing.T) {
		a := e.do(t, http.MethodPut, "/api/v1/files/a/", "alice", strings.NewReader("x"), nil)
		if a.status != http.StatusBadRequest || a.code() != "invalid_argument" {
			t.Errorf("PUT a/ = %d %s, want 400 invalid_argument", a.status, a.body)
		}
	})
	t.Run("the limits themselves are fine", func(t *testing.T) {
		exact := longPath[:MaxPathLen]
		exact = strings.TrimSuffix(exact, "/") + strings.Repeat("e", MaxPathLen-len(strings.TrimSuffix(exact, "/")))
		for _, p := range []string{strings.Repeat("s", MaxSegmentLen), exact} {
			a := e.do(t, http.MethodPut, "/api/v1/files/"+p, "alice", strings.NewReader("ok"), nil)
			if a.status != http.StatusCreated {
				t.Errorf("PUT of a %d-byte path = %d %s, want 201", len(p), a.status, a.body)
			}
		}
	})
	// Nothing landed anywhere but in alice's tree, and nothing there but
	// what the test put.
	if got := dirNames(t, e.dir); !reflect.DeepEqual(got, []string{"files", "meta.db", "tmp"}) {
		t.Errorf("data dir holds %v", got)
	}
	if got := dirNames(t, e.dir+"/files"); !reflect.DeepEqual(got, []string{"alice"}) {
		t.Errorf("files/ holds %v", got)
	}
	if got := dirNames(t, e.dir+"/files/alice"); !reflect.DeepEqual(got, []string{"a", seg, strings.Repeat("s", MaxSegmentLen)}) {
		t.Errorf("alice's tree holds %v", got)
	}
}

func TestUsersAreIsolated(t *testing.T) {
	e := newTestEnv(t, 0)
	bob := e.as(t, "bob")
	aliceFile := e.upload(t, "alice", "private/diary.txt", []byte("alice's secret"))

	if _, _, err := e.client.Download(bob, "private/diary.txt", ""); !errors.Is(err, ErrFileNotFound) {
		t.Errorf("bob reads alice's file: err = %v, want %v", err, ErrFileNotFound)
	}
	if _, err := e.client.List(bob, "private"); !errors.Is(err, ErrDirNotFound) {
		t.Errorf("bob lists alice's directory: err = %v, want %v", err, ErrDirNotFound)
	}
	if got, err := e.client.List(bob, ""); err != nil || len(got.Entries) != 0 {
		t.Errorf("bob's root = (%+v, %v), want empty", got, err)
	}
	if err := e.client.Delete(bob, "private/diary.txt"); !errors.Is(err, ErrFileNotFound) {
		t.Errorf("bob deletes alice's file: err = %v, want %v", err, ErrFileNotFound)
	}
	if _, _, err := e.client.Upload(bob, "private/diary.txt", strings.NewReader("x"), 1, UploadOptions{IfMatch: aliceFile.ETag}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("bob replaces alice's file by its etag: err = %v, want %v", err, ErrPrecondition)
	}
	// The same name in bob's tree is bob's own file.
	_, created, err := e.client.Upload(bob, "private/diary.txt", strings.NewReader("bob's"), 5, UploadOptions{})
	if err != nil || !created {
		t.Fatalf("bob's upload = (created %t, %v), want a new file", created, err)
	}
	if got, _ := e.download(t, "alice", "private/diary.txt"); string(got) != "alice's secret" {
		t.Errorf("alice's file = %q after bob's upload", got)
	}
	if err := e.client.Delete(bob, "private/diary.txt"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.download(t, "alice", "private/diary.txt"); string(got) != "alice's secret" {
		t.Errorf("alice's file = %q after bob's delete", got)
	}

	// A token whose subject is no valid directory name owns nothing.
	for _, user := range []string{"..", "a/b", "x\x00y", "."} {
		ctx := e.as(t, user)
		_, err := e.client.List(ctx, "")
		if !errors.Is(err, ErrNoAccount) || apierr.CodeOf(err) != apierr.CodePermissionDenied {
			t.Errorf("list as %q: err = %v, want %v", user, err, ErrNoAccount)
		}
	}
}

func TestAuthentication(t *testing.T) {
	e := newTestEnv(t, 0)
	e.upload(t, "alice", "f.txt", []byte("f"))
	expired, _, err := e.keys.Sign(auth.Identity{ID: "alice", Name: "alice"}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		auth   string
	}{
		{name: "download", method: http.MethodGet, path: "/api/v1/files/f.txt"},
		{name: "head", method: http.MethodHead, path: "/api/v1/files/f.txt"},
		{name: "list", method: http.MethodGet, path: "/api/v1/files/"},
		{name: "list root", method: http.MethodGet, path: "/api/v1/files"},
		{name: "upload", method: http.MethodPut, path: "/api/v1/files/g.txt"},
		{name: "delete", method: http.MethodDelete, path: "/api/v1/files/f.txt"},
		{name: "unclean path", method: http.MethodGet, path: "/api/v1/files/a/../f.txt"},
		{name: "forged token", method: http.MethodGet, path: "/api/v1/files/f.txt", auth: "Bearer not.a.token"},
		{name: "expired token", method: http.MethodGet, path: "/api/v1/files/f.txt", auth: "Bearer " + expired},
		{name: "basic auth", method: http.MethodGet, path: "/api/v1/files/f.txt", auth: "Basic YWxpY2U6eA=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var header http.Header
			if tc.auth != "" {
				header = http.Header{"Authorization": {tc.auth}}
			}
			a := e.do(t, tc.method, tc.path, "", strings.NewReader("x"), header)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("status = %d %s, want 401", a.status, a.body)
			}
			if tc.method != http.MethodHead && a.code() != "unauthenticated" {
				t.Errorf("code = %q, want unauthenticated", a.code())
			}
		})
	}
	if got, _ := e.download(t, "alice", "f.txt"); string(got) != "f" {
		t.Errorf("f.txt = %q after the refused calls", got)
	}
	if _, err := e.client.List(context.Background(), ""); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Errorf("client without a token: err = %v, want unauthenticated", err)
	}
	if _, _, err := e.client.Upload(context.Background(), "g.txt", strings.NewReader("g"), 1, UploadOptions{}); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Errorf("client upload without a token: err = %v, want unauthenticated", err)
	}
}

func TestRoutes(t *testing.T) {
	e := newTestEnv(t, 0)
	for _, tc := range []struct {
		method     string
		path       string
		wantStatus int
	}{
		{method: http.MethodPost, path: "/api/v1/files/x", wantStatus: http.StatusMethodNotAllowed},
		{method: http.MethodPut, path: "/api/v1/files", wantStatus: http.StatusMethodNotAllowed},
		{method: http.MethodDelete, path: "/api/v1/files", wantStatus: http.StatusMethodNotAllowed},
		{method: http.MethodPost, path: "/api/v1/files/", wantStatus: http.StatusMethodNotAllowed},
		{method: http.MethodGet, path: "/api/v1/filesx", wantStatus: http.StatusNotFound},
	} {
		a := e.do(t, tc.method, tc.path, "alice", nil, nil)
		if a.status != tc.wantStatus || a.code() == "" {
			t.Errorf("%s %s = %d %s, want %d with a JSON error", tc.method, tc.path, a.status, a.body, tc.wantStatus)
		}
	}
}

func TestConcurrentUploads(t *testing.T) {
	e := newTestEnv(t, 0)
	ctx := e.as(t, "alice")
	const n = 12

	t.Run("create only once", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprintf("writer %d", i)
				_, _, errs[i] = e.client.Upload(ctx, "once.txt", strings.NewReader(body), int64(len(body)), UploadOptions{IfNoneMatch: "*"})
			})
		}
		wg.Wait()
		var created int
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, ErrPrecondition):
				t.Errorf("err = %v, want nil or %v", err, ErrPrecondition)
			}
		}
		if created != 1 {
			t.Errorf("%d uploads created the file, want 1", created)
		}
	})

	t.Run("last writer wins whole", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := bytes.Repeat([]byte{byte('a' + i)}, 10000+i)
				if _, _, err := e.client.Upload(ctx, "race/x.bin", bytes.NewReader(body), int64(len(body)), UploadOptions{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, info := e.download(t, "alice", "race/x.bin")
		if etagOf(got) != info.File.ETag || bytes.Count(got, got[:1]) != len(got) {
			t.Errorf("the file (%d bytes) is a mix or its etag %s is not its content's %s", len(got), info.File.ETag, etagOf(got))
		}
		listing, err := e.client.List(ctx, "race")
		if err != nil || len(listing.Entries) != 1 || listing.Entries[0].ETag != info.File.ETag {
			t.Errorf("listing = (%+v, %v), want the one file with etag %s", listing, err, info.File.ETag)
		}
	})
	if left := e.tmpEntries(t); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}
