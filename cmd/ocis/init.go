package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services/users"
)

// registerInit adds `ocis init`.
func registerInit(a *app) {
	set := config.NewSet("init", a.usage)
	shared := service.NewShared()
	var (
		password string
		force    bool
	)
	set.Register("", "", func(fs *flag.FlagSet) {
		fs.StringVar(&shared.BaseDataPath, "base-data-path", shared.BaseDataPath, "where services keep their data and the config file")
		fs.StringVar(&shared.ConfigFile, "config-file", shared.ConfigFile, "config file to write (default <base-data-path>/ocis.env)")
	})
	set.Register("", "init", func(fs *flag.FlagSet) {
		fs.StringVar(&password, "admin-password", "", "admin password (default: generated and printed once)")
		fs.BoolVar(&force, "force", false, "overwrite an existing config")
	})
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "init",
		ShortUsage: "ocis init [--admin-password P] [--force]",
		ShortHelp:  "write the config with fresh shared secrets (JWT, runtime token, NATS) and an admin password",
		FlagSet:    set.FlagSet(),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("init", args); err != nil {
				return err
			}
			if err := set.Load(func() (string, error) { return "", nil }); err != nil {
				return err
			}
			if password != "" {
				if err := users.CheckPassword(adminName, password); err != nil {
					return fmt.Errorf("--admin-password: %w", err)
				}
			}
			if err := initConfig(shared.ConfigPath(), password, force, a.stdout); err != nil {
				return err
			}
			warnExistingAdmin(a.stdout, shared)
			return nil
		},
	})
}

// adminName is the admin account init's password is for, unless
// OCIS_USERS_ADMIN_USER names another; the password rule barely depends
// on the name.
const adminName = "admin"

// warnExistingAdmin says, when an account store exists already, that the
// admin account in it keeps its password: the hash init wrote is used
// only to create an admin that does not exist yet.
func warnExistingAdmin(out io.Writer, shared *service.Shared) {
	store := filepath.Join(shared.BaseDataPath, users.Name, "users.db")
	if _, err := os.Stat(store); err != nil {
		return
	}
	fmt.Fprintf(out, "note: the account store %s exists already: its admin account keeps its current password,\n"+
		"the new password applies only where no admin account exists yet.\n"+
		"To change the password of an existing account, run `ocis users reset-password [--user NAME]`.\n", store)
}

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
	body, err := configBody(secret, string(hash))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, []byte(body), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "ocis initialised: config written to %s (mode 0600)\n", path)
	if generated {
		fmt.Fprintf(out, "admin user: admin\nadmin password: %s\n(shown only this once: the config keeps just its bcrypt hash; save it now)\n", adminPassword)
	}
	return nil
}

// configBody is the config file init writes: every secret the nodes of
// one system share, so that copying the file to another machine is all a
// new node needs (DESIGN.md, "Distribution"). NATS clients and NATS routes
// get credentials of their own, so a client can never pose as a server.
func configBody(jwtSecret, adminHash string) (string, error) {
	var secrets [3]string
	for i := range secrets {
		s, err := randomString(24)
		if err != nil {
			return "", err
		}
		secrets[i] = s
	}
	lines := []struct{ key, value string }{
		{config.EnvName("", "jwt-secret"), jwtSecret},
		{config.EnvName("users", "admin-password-hash"), adminHash},
		{config.EnvName("runtime", "token"), secrets[0]},
		{config.EnvName("nats", "user"), "ocis"},
		{config.EnvName("nats", "password"), secrets[1]},
		{config.EnvName("nats", "cluster-user"), "ocis-route"},
		{config.EnvName("nats", "cluster-password"), secrets[2]},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ocis init at %s.\n", time.Now().UTC().Format(time.RFC3339))
	b.WriteString("# Keys are environment variable names; a variable set in the environment wins.\n")
	b.WriteString("# Copy this file to another machine's base data path to add it as a node.\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%s=%q\n", l.key, l.value)
	}
	return b.String(), nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeFileAtomic writes data next to path, syncs it, and renames it into
// place, so a crash never leaves half a config or token file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return replaceFile(path, data, mode, true)
}

// replaceFile writes data next to path and renames it into place: a reader
// sees the old file or the new one whole, never a part. With durable, the
// data is synced before the rename, so that the new file also survives a
// crash of the machine.
func replaceFile(path string, data []byte, mode os.FileMode, durable bool) error {
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
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
