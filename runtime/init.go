package runtime

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/config"
)

// ErrConfigExists refuses to overwrite a config without --force.
var ErrConfigExists = errors.New("config file exists")

// initConfig writes the config file with a fresh JWT secret and the admin
// password (generated when empty), readable by its owner only, and prints
// the password once to out.
func initConfig(path, adminPassword string, force bool, out io.Writer) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%w: %s; run `ocis init --force` to replace it (a new JWT secret ends every session)", ErrConfigExists, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	secret, err := randomString(32)
	if err != nil {
		return err
	}
	generated := adminPassword == ""
	if generated {
		// A generated password always mixes letters and digits, as the
		// users service's password rule demands.
		p, err := randomString(15)
		if err != nil {
			return err
		}
		adminPassword = p + "7x"
	}
	// Only a hash of the admin password is kept: the password is shown
	// once, and hashing here spares the first start the bcrypt cost.
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash admin password: %w", err)
	}
	body := fmt.Sprintf(`# Written by ocis init at %s.
# Keys are environment variable names; a variable set in the environment wins.
%s=%q
%s=%q
`, time.Now().UTC().Format(time.RFC3339),
		config.EnvName("", "jwt-secret"), secret,
		config.EnvName("users", "admin-password-hash"), hash)
	if err := writeFileAtomic(path, []byte(body), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "ocis initialised: config written to %s (mode 0600)\n", path)
	if generated {
		fmt.Fprintf(out, "admin user: admin\nadmin password: %s\n(shown only this once: the config keeps just its bcrypt hash; save it now)\n", adminPassword)
	}
	return nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeFileAtomic writes data next to path and renames it into place, so a
// crash never leaves half a config or token file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadOrCreateToken returns the runtime's control token: the one in the
// environment or flags if set, else the one in the token file, created on
// first start.
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
