package storage

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/auth"
)

// asUser is a context carrying claims for user, as the router hands it to
// the service after verifying a token.
func asUser(user string) context.Context {
	c := &auth.Claims{}
	c.Subject = user
	return auth.WithClaims(context.Background(), c)
}

// failingReader yields some bytes, then an error: a sender that broke off.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPutRefusals(t *testing.T) {
	e := newTestEnv(t, 0)
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		req     PutRequest
		wantErr error
	}{
		{name: "no caller", ctx: context.Background(), req: PutRequest{Path: "a", Body: strings.NewReader("x"), Size: 1}, wantErr: apierr.ErrUnauthenticated},
		{name: "caller with a bad name", ctx: asUser("../root"), req: PutRequest{Path: "a", Body: strings.NewReader("x"), Size: 1}, wantErr: ErrNoAccount},
		{name: "shorter than announced", ctx: asUser("alice"), req: PutRequest{Path: "a", Body: strings.NewReader("abc"), Size: 10}, wantErr: ErrIncomplete},
		{name: "sender broke off", ctx: asUser("alice"), req: PutRequest{Path: "a", Body: &failingReader{n: 300 << 10}, Size: -1}, wantErr: ErrIncomplete},
		{name: "directory in the way", ctx: asUser("alice"), req: PutRequest{Path: "dir", Body: strings.NewReader("x"), Size: 1}, wantErr: ErrPathInUse},
		{name: "file in the way", ctx: asUser("alice"), req: PutRequest{Path: "dir/f/g", Body: strings.NewReader("x"), Size: 1}, wantErr: ErrPathInUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.files.Put(asUser("alice"), PutRequest{Path: "dir/f", Body: strings.NewReader("f"), Size: 1}); err != nil {
				t.Fatal(err)
			}
			_, err := e.files.Put(tc.ctx, tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if left := e.tmpEntries(t); len(left) != 0 {
				t.Errorf("tmp/ holds %v", left)
			}
			if r := e.record(t, "alice", "a"); r != (record{}) {
				t.Errorf("a refused upload left a record for a: %+v", r)
			}
		})
	}
	if got := dirNames(t, e.dir+"/files/alice"); !reflect.DeepEqual(got, []string{"dir"}) {
		t.Errorf("alice's tree holds %v, want dir alone", got)
	}
}

func TestEtagMatches(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		header string
		weak   bool
		want   bool
	}{
		{header: `"abc"`, want: true},
		{header: `"x", "abc"`, want: true},
		{header: `"x","abc" `, want: true},
		{header: `*`, want: true},
		{header: `"abd"`, want: false},
		{header: `abc`, want: false},
		{header: `W/"abc"`, want: false},
		{header: `W/"abc"`, weak: true, want: true},
	} {
		if got := etagMatches(tc.header, etag, tc.weak); got != tc.want {
			t.Errorf("etagMatches(%q, weak %t) = %t, want %t", tc.header, tc.weak, got, tc.want)
		}
	}
}

func TestEntryJSON(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, tc := range []struct {
		name  string
		entry Entry
		want  string
	}{
		{name: "file", entry: Entry{FileInfo: FileInfo{Path: "a/b", Size: 0, ETag: `"e"`, MTime: mtime}}, want: `{"path":"a/b","size":0,"etag":"\"e\"","mtime":"2024-05-06T07:08:09.00000001Z"}`},
		{name: "directory", entry: Entry{FileInfo: FileInfo{Path: "a/"}, Dir: true}, want: `{"path":"a/","dir":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.entry)
			if err != nil || string(got) != tc.want {
				t.Fatalf("marshal = (%s, %v), want %s", got, err, tc.want)
			}
			var back Entry
			if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, tc.entry) {
				t.Errorf("round trip = (%+v, %v), want %+v", back, err, tc.entry)
			}
		})
	}
}

// deadlineWriter is a ResponseWriter that records read deadlines, as the
// server's connection would take them.
type deadlineWriter struct {
	http.ResponseWriter
	deadlines []time.Time
}

func (w *deadlineWriter) SetReadDeadline(d time.Time) error {
	w.deadlines = append(w.deadlines, d)
	return nil
}

func TestUploadBodyMovesTheDeadline(t *testing.T) {
	w := &deadlineWriter{}
	b := &uploadBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), rc: http.NewResponseController(w)}
	before := time.Now()
	buf := make([]byte, 10)
	for range 5 {
		if _, err := b.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	// Set at the first read, then left alone while it is far enough off.
	if len(w.deadlines) != 1 {
		t.Fatalf("deadlines set: %v, want one", w.deadlines)
	}
	if d := w.deadlines[0]; d.Before(before.Add(uploadIdle)) || d.After(time.Now().Add(uploadIdle)) {
		t.Errorf("deadline %v, want %s after the read", d, uploadIdle)
	}
	// Once it comes near, the next read moves it on.
	b.deadline = time.Now().Add(uploadIdle / 4)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	if len(w.deadlines) != 2 || !w.deadlines[1].After(w.deadlines[0]) {
		t.Errorf("deadlines set: %v, want a later second one", w.deadlines)
	}
}

func TestRangeTotal(t *testing.T) {
	for in, want := range map[string]int64{
		"bytes 0-9/100": 100,
		"bytes 0-9/*":   -1,
		"":              -1,
	} {
		if got := rangeTotal(in); got != want {
			t.Errorf("rangeTotal(%q) = %d, want %d", in, got, want)
		}
	}
}
