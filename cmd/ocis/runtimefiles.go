package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// addrPath is where a running runtime records the address its control API
// listens on, next to its token (runtime.token): a CLI in another shell
// finds both from the base data path alone, whatever addresses the
// runtime was started with.
func addrPath(shared *service.Shared) string {
	return filepath.Join(shared.BaseDataPath, "runtime.addr")
}

// publishControl writes the control API's address and token into the
// base data path (mode 0600, each atomically) and returns what removes the
// address again at a clean stop. The token file then always holds the
// token the running runtime checks, even when it came from the
// environment.
//
// The token file can become the token's only copy (a later start given no
// token reads it, token.go), so it is synced when written; one that
// already holds the token with mode 0600 is left as it is, as at most
// starts. The address describes this process alone and every start
// writes it again: it is not synced, a crash of the machine ending the
// runtime it names too.
func publishControl(shared *service.Shared, addr, token string) (func(), error) {
	if !holds(tokenPath(shared), token) {
		if err := writeFileAtomic(tokenPath(shared), []byte(token), 0o600); err != nil {
			return nil, err
		}
	}
	if err := replaceFile(addrPath(shared), []byte(addr+"\n"), 0o600, false); err != nil {
		return nil, err
	}
	return func() {
		// Only our own record: a runtime started since has its own.
		if b, err := os.ReadFile(addrPath(shared)); err == nil && bytes.Equal(bytes.TrimSpace(b), []byte(addr)) {
			_ = os.Remove(addrPath(shared))
		}
	}, nil
}

// holds reports whether path is a regular file of mode 0600 holding
// content.
func holds(path, content string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && string(b) == content
}

// recordedAddr is the control address the runtime of this base data path
// recorded, or "" when none runs (or it never wrote one).
func recordedAddr(shared *service.Shared) string {
	b, err := os.ReadFile(addrPath(shared))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// recordedToken is the token file's token, or "" without one.
func recordedToken(shared *service.Shared) string {
	b, err := os.ReadFile(tokenPath(shared))
	if errors.Is(err, os.ErrNotExist) || err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
