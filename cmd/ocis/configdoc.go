package main

//go:generate sh -c "go run . config-doc > ../../docs/configuration.md"

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/service"
)

// registerConfigDoc adds the hidden `ocis config-doc`, which prints
// docs/configuration.md from the flag definitions themselves (`go generate
// ./cmd/ocis` or `make docs`); a test fails when the committed file is
// stale.
func registerConfigDoc(a *app) {
	a.hidden = append(a.hidden, &ffcli.Command{
		Name:       "config-doc",
		ShortUsage: "ocis config-doc > docs/configuration.md",
		FlagSet:    a.flagSet("config-doc"),
		Exec: func(_ context.Context, args []string) error {
			if err := noArgs("config-doc", args); err != nil {
				return err
			}
			_, err := io.WriteString(a.stdout, configDoc(a.cat))
			return err
		},
	})
}

// docDefaults stand for defaults that depend on the machine the doc is
// generated on.
var docDefaults = map[string]string{
	"base-data-path":    "`$HOME/.ocis`",
	"node":              "the short host name",
	"advertise-host":    "the host name",
	"users.login-slots": "the CPUs less one",
}

// configDoc is docs/configuration.md: every setting of ocis server and of
// each service run alone, with its env var, default and meaning.
func configDoc(cat service.Catalogue) string {
	f := newFamily(cat, io.Discard)
	shared := map[string]bool{}
	tmp := flag.NewFlagSet("", flag.ContinueOnError)
	service.NewShared().RegisterFlags(tmp)
	tmp.VisitAll(func(fl *flag.Flag) { shared[fl.Name] = true })
	ownedBy := func(flagName string) string {
		for _, d := range cat {
			if strings.HasPrefix(flagName, d.Name+".") {
				return d.Name
			}
		}
		return ""
	}

	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from the flag definitions by ` + "`go generate ./cmd/ocis`" + ` (or ` + "`make docs`" + `); do not edit by hand. A test fails when this file is stale. -->

Every setting is a flag, an environment variable and a key of the config
file, with one name for all three: the flag ` + "`--storage.quota`" + ` of
` + "`ocis server`" + ` (` + "`--quota`" + ` of ` + "`ocis storage server`" + `) is ` + "`OCIS_STORAGE_QUOTA`" + `
in the environment and in the config file. Flags win over the environment,
which wins over the config file (` + "`OCIS_CONFIG_FILE`" + `, default
` + "`$OCIS_BASE_DATA_PATH/ocis.env`" + `, ` + "`KEY=VALUE`" + ` lines), which wins over the
defaults.

Every value is checked before anything starts: an invalid one ends the
command with exit 1, naming the flag, the env var, the value and where it
came from. A key of the config file that no setting has is refused the
same way, with the closest known key ("did you mean …?"); an unknown
` + "`OCIS_`" + ` variable of the environment is only warned about. Sizes take
units: ` + "`1048576`" + `, ` + "`10MB`" + ` (powers of 1000), ` + "`1GiB`" + ` (powers of 1024).
Durations are Go durations: ` + "`500ms`" + `, ` + "`30s`" + `, ` + "`1m30s`" + `.

A change of the config file applies to a running ` + "`ocis server`" + ` by
` + "`ocis restart <service>`" + ` (that service only) or ` + "`ocis reload`" + ` (or SIGHUP:
exactly the services whose settings changed); settings outside every
service's, below under "The runtime" and "Shared", apply when ` + "`ocis server`" + `
itself restarts, except ` + "`OCIS_JWT_SECRET`" + `, which a reload applies by
restarting every service.

Secrets (passwords, secrets, tokens, hashes) are never logged or printed.
`)
	table := func(title, intro string, settings []config.Setting, standalone func(string) string) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if intro != "" {
			b.WriteString(intro + "\n\n")
		}
		if standalone != nil {
			b.WriteString("| `ocis server` flag | alone | env | default | meaning |\n|---|---|---|---|---|\n")
		} else {
			b.WriteString("| flag | env | default | meaning |\n|---|---|---|---|\n")
		}
		for _, s := range settings {
			def := docDefaults[s.Flag]
			if def == "" {
				def = "`" + s.Default + "`"
				if s.Default == "" {
					def = "none"
				}
			}
			meaning := strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(s.Usage)
			if standalone != nil {
				fmt.Fprintf(&b, "| `--%s` | `--%s` | `%s` | %s | %s |\n", s.Flag, standalone(s.Flag), s.Env, def, meaning)
			} else {
				fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", s.Flag, s.Env, def, meaning)
			}
		}
	}
	var sharedSettings, runtimeSettings []config.Setting
	for _, s := range f.set.Settings("") {
		switch {
		case shared[s.Flag]:
			sharedSettings = append(sharedSettings, s)
		case ownedBy(s.Flag) == "":
			runtimeSettings = append(runtimeSettings, s)
		}
	}
	table("Shared", "Every command takes these, `ocis server` and each service run alone alike.", sharedSettings, nil)
	table("The runtime", "`ocis server` only; `--runtime.addr` and `--runtime.token` are also how the CLI verbs (`ocis list`, `kill`, `run`, `restart`, `reload`, …) reach it, though they find a running runtime from the base data path alone (`runtime.addr`, `runtime.token`).", runtimeSettings, nil)
	for _, d := range cat {
		prefix := d.Name + "."
		table(fmt.Sprintf("%s: %s", d.Name, d.Summary),
			fmt.Sprintf("Under `ocis server` each flag is prefixed `%s`; `ocis %s server` takes it without the prefix.", prefix, d.Name),
			f.set.Settings(prefix), func(name string) string { return strings.TrimPrefix(name, prefix) })
	}
	b.WriteString(`
## ocis init

| flag | env | default | meaning |
|---|---|---|---|
| ` + "`--admin-password`" + ` | ` + "`OCIS_INIT_ADMIN_PASSWORD`" + ` | generated and printed once | the admin password; only its bcrypt hash is written |
| ` + "`--force`" + ` | ` + "`OCIS_INIT_FORCE`" + ` | ` + "`false`" + ` | overwrite an existing config (a new JWT secret ends every session) |
`)
	return b.String()
}
