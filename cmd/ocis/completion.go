package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// registerCompletion adds `ocis completion bash|zsh`: a completion script
// made from the command tree itself, so every command, service and flag
// is completed as this binary has it.
func registerCompletion(a *app) {
	a.verbs = append(a.verbs, &ffcli.Command{
		Name:       "completion",
		ShortUsage: "ocis completion bash|zsh",
		ShortHelp:  "print a shell completion script: source <(ocis completion bash), or for zsh put it in a file _ocis on $fpath",
		FlagSet:    a.flagSet("completion"),
		Exec: func(_ context.Context, args []string) error {
			if len(args) != 1 {
				return &usageError{"completion takes one shell: bash or zsh"}
			}
			paths := completionPaths(a.root(), a.cat.Names())
			switch args[0] {
			case "bash":
				return writeBash(a.stdout, paths)
			case "zsh":
				return writeZsh(a.stdout, paths)
			}
			return &usageError{fmt.Sprintf("completion for %q: want bash or zsh", args[0])}
		},
	})
}

// completionPath is one command of the tree ("ocis storage server"): what
// may follow it.
type completionPath struct {
	path  string
	subs  []string // its subcommands
	words []string // subcommands, flags, and service names where it takes one
}

func completionPaths(root *ffcli.Command, services []string) []completionPath {
	var out []completionPath
	var walk func(c *ffcli.Command, path string)
	walk = func(c *ffcli.Command, path string) {
		p := completionPath{path: path}
		for _, sub := range c.Subcommands {
			if sub.Name == "config-doc" {
				continue // hidden
			}
			p.subs = append(p.subs, sub.Name)
		}
		p.words = append(p.words, p.subs...)
		if c.FlagSet != nil {
			c.FlagSet.VisitAll(func(f *flag.Flag) { p.words = append(p.words, "--"+f.Name) })
		}
		if len(p.subs) == 0 && strings.Contains(c.ShortUsage, "<service>") {
			p.words = append(p.words, services...)
		}
		sort.Strings(p.words)
		p.words = slices.Compact(p.words)
		out = append(out, p)
		for _, sub := range c.Subcommands {
			if sub.Name != "config-doc" {
				walk(sub, path+" "+sub.Name)
			}
		}
	}
	walk(root, "ocis")
	return out
}

func writeBash(w io.Writer, paths []completionPath) error {
	var b strings.Builder
	b.WriteString("# bash completion for ocis: source <(ocis completion bash)\n")
	b.WriteString("_ocis_subs() {\n  case \"$1\" in\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "    %q) echo %q ;;\n", p.path, strings.Join(p.subs, " "))
	}
	b.WriteString("  esac\n}\n\n")
	b.WriteString(`_ocis() {
  local cur="${COMP_WORDS[COMP_CWORD]}" cmdpath="ocis" i w words
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case " $(_ocis_subs "$cmdpath") " in *" $w "*) cmdpath="$cmdpath $w" ;; esac
  done
  case "$cmdpath" in
`)
	for _, p := range paths {
		fmt.Fprintf(&b, "    %q) words=%q ;;\n", p.path, strings.Join(p.words, " "))
	}
	b.WriteString(`  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _ocis ocis
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeZsh(w io.Writer, paths []completionPath) error {
	var b strings.Builder
	b.WriteString("#compdef ocis\n# zsh completion for ocis: put this in a file _ocis on $fpath, or source it\n")
	b.WriteString("_ocis_subs() {\n  case \"$1\" in\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "    %q) echo %q ;;\n", p.path, strings.Join(p.subs, " "))
	}
	b.WriteString("  esac\n}\n\n")
	// $path is zsh's PATH array: the command path is cmdpath.
	b.WriteString(`_ocis() {
  local cmdpath="ocis" i w
  local -a opts
  for ((i = 2; i < CURRENT; i++)); do
    w="${words[i]}"
    [[ "$w" == -* ]] && continue
    case " $(_ocis_subs "$cmdpath") " in *" $w "*) cmdpath="$cmdpath $w" ;; esac
  done
  case "$cmdpath" in
`)
	for _, p := range paths {
		fmt.Fprintf(&b, "    %q) opts=(%s) ;;\n", p.path, strings.Join(p.words, " "))
	}
	b.WriteString(`  esac
  compadd -- "${opts[@]}"
}

if [[ "${funcstack[1]}" == "_ocis" ]]; then
  _ocis "$@"
else
  compdef _ocis ocis
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}
