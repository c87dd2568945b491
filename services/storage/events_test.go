package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/events"
)

// recorder is a publisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, ev := range r.events {
		out = append(out, fmt.Sprintf("%s %s %s %s", ev.Type, ev.Actor, ev.Subject, ev.Payload))
	}
	return out
}

func TestEventsOfFiles(t *testing.T) {
	e := newTestEnv(t, 0)
	rec := &recorder{}
	e.files.events = rec
	alice := e.as(t, "alice")
	upload := func(p, data string) FileInfo {
		t.Helper()
		fi, _, err := e.client.Upload(alice, p, strings.NewReader(data), int64(len(data)), UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	first := upload("docs/a.txt", "one")
	second := upload("docs/a.txt", "two!")
	// What fails tells no one: a precondition, a missing file, a
	// directory that is not empty, the deletion of a directory.
	if _, _, err := e.client.Upload(alice, "docs/a.txt", strings.NewReader("x"), 1, UploadOptions{IfNoneMatch: "*"}); err == nil {
		t.Fatal("If-None-Match: * over an existing file succeeded")
	}
	if err := e.client.Delete(alice, "nothing.txt"); err == nil {
		t.Fatal("deleted a file that does not exist")
	}
	if err := e.client.Delete(alice, "docs/a.txt"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Delete(alice, "docs/"); err != nil {
		t.Fatal(err)
	}

	want := []string{
		fmt.Sprintf(`file.written alice docs/a.txt {"path":"docs/a.txt","size":3,"etag":%q,"new":true}`, first.ETag),
		fmt.Sprintf(`file.written alice docs/a.txt {"path":"docs/a.txt","size":4,"etag":%q,"new":false}`, second.ETag),
		`file.deleted alice docs/a.txt {"path":"docs/a.txt"}`,
	}
	if got := rec.lines(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
