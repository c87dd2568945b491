package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// tokenPath is where the runtime keeps its control token.
func tokenPath(shared *service.Shared) string {
	return filepath.Join(shared.BaseDataPath, "runtime.token")
}

// loadOrCreateToken returns the control token kept in the token file at
// path, creating the file with a fresh token on first start. A token given
// by flag or environment never reaches here (resolveToken).
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read runtime token: %w", err)
	}
	token, err := randomString(32)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	return token, writeFileAtomic(path, []byte(token), 0o600)
}
