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
// Both files describe the running runtime, which every start writes
// again: they are not synced (a crash of the machine ends the runtime they
// describe too), and a token file that already holds the token is left as
// it is, so a token the runtime made itself (token.go) keeps its synced
// file.
func publishControl(shared *service.Shared, addr, token string) (func(), error) {
	if b, err := os.ReadFile(tokenPath(shared)); err != nil || string(b) != token {
		if err := replaceFile(tokenPath(shared), []byte(token), 0o600, false); err != nil {
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
