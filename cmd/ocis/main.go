// Command ocis is one binary that embeds a family of services and the
// runtime that orchestrates them. This package is the composition root: one
// file per command, each adding itself to the command tree with a register
// function, as Thanos's main does.
package main

import (
	"io"
	"os"

	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services"
)

func main() {
	os.Exit(ocis(os.Args[1:], services.Catalogue(), os.Stdout, os.Stderr))
}

// ocis builds the command tree of cat and runs the command args name; it
// returns the process's exit code.
func ocis(args []string, cat service.Catalogue, stdout, stderr io.Writer) int {
	a := newApp(cat, stdout, stderr)
	registerServer(a)
	registerInit(a)
	registerList(a)
	registerKill(a)
	registerRun(a)
	registerRestart(a)
	registerReload(a)
	registerCompletion(a)
	registerConfigDoc(a)
	registerStatus(a)
	registerLogs(a)
	registerDashboard(a)
	registerVersion(a)
	for _, d := range cat {
		registerService(a, d)
	}
	return a.run(args)
}
