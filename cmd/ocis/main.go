// Command ocis is one binary that embeds a family of services and the
// runtime that orchestrates them. This package is the composition root: one
// file per command, each adding itself to the command tree with a register
// function, as Thanos's main does.
package main

import (
	"io"
	"os"
	"slices"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services"
)

func main() {
	os.Exit(ocis(os.Args[1:], services.Catalogue(), os.Stdout, os.Stderr))
}

// verb is one command of the tree: its name, and the function that adds it.
type verb struct {
	name     string
	register func(*app)
}

// verbs are the commands, in the order help lists them.
func verbs() []verb {
	return []verb{
		{"server", registerServer}, {"init", registerInit}, {"list", registerList},
		{"kill", registerKill}, {"run", registerRun}, {"restart", registerRestart},
		{"reload", registerReload}, {"completion", registerCompletion}, {"config-doc", registerConfigDoc},
		{"status", registerStatus}, {"logs", registerLogs}, {"dashboard", registerDashboard},
		{"version", registerVersion},
	}
}

// ocis builds the command tree of cat and runs the command args name; it
// returns the process's exit code.
func ocis(args []string, cat service.Catalogue, stdout, stderr io.Writer) int {
	// `ocis help [command…]` is the help of that command, as -h gives it.
	if len(args) > 0 && args[0] == "help" {
		args = append(slices.Clone(args[1:]), "-h")
	}
	a := newApp(cat, stdout, stderr)
	a.register(args)
	return a.run(args)
}

// register adds the commands a command line needs. A line that names a
// command gets that command alone: building every command and its flags
// takes about a millisecond, a share of a cold start that no command but
// the named one needs. A line that names none, or one this binary does
// not know, gets the whole tree for its help or its error, as does
// completion, which is made from the tree.
func (a *app) register(args []string) {
	named := ""
	if len(args) > 0 && args[0] != "completion" {
		named = args[0]
	}
	all := verbs()
	if !slices.ContainsFunc(all, func(v verb) bool { return v.name == named }) && !slices.Contains(a.cat.Names(), named) {
		named = ""
	}
	for _, v := range all {
		if named == "" || v.name == named {
			v.register(a)
		}
	}
	for _, d := range a.cat {
		if named == "" || d.Name == named {
			registerService(a, d)
		}
	}
}
