package main

import "github.com/ocis-runtime/ocis/runtime/control"

// registerRun adds `ocis run <service>`.
func registerRun(a *app) {
	a.verbs = append(a.verbs, controlCommand(a, "run", "start a stopped or failed service", (*control.Client).Run))
}
