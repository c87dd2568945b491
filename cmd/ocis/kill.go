package main

import "github.com/ocis-runtime/ocis/runtime/control"

// registerKill adds `ocis kill <service>`.
func registerKill(a *app) {
	a.verbs = append(a.verbs, controlCommand(a, "kill", "stop one service gracefully; it is not restarted", (*control.Client).Kill))
}
