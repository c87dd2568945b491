package main

import "github.com/ocis-runtime/ocis/runtime/control"

// registerRestart adds `ocis restart <service>`.
func registerRestart(a *app) {
	a.verbs = append(a.verbs, controlCommand(a, "restart", "stop then start one service", (*control.Client).Restart))
}
