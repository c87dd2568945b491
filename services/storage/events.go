package storage

import (
	"context"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// The events the storage service publishes (docs/events.md). The actor is
// the owner's account id, the subject the file's path in the owner's tree.
const (
	EventFileWritten = "file.written"
	EventFileDeleted = "file.deleted"
)

// fileWritten is the payload of file.written: the file as stored, and
// whether the upload created it (false: it replaced one).
type fileWritten struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
	New  bool   `json:"new"`
}

// fileDeleted is the payload of file.deleted.
type fileDeleted struct {
	Path string `json:"path"`
}

// publish tells the other services what happened to a file of user; it
// never blocks and never fails the request (service.Publish).
func (f *files) publish(ctx context.Context, typ, user, p string, payload any) {
	service.Publish(ctx, f.logger, f.events, typ, user, p, payload)
}
