package main

import "github.com/ocis-runtime/ocis/runtime/control"

// registerRestart adds `ocis restart <service>`.
func registerRestart(a *app) {
	a.verbs = append(a.verbs, controlCommand(a, "restart", "stop then start one service, built from the config file as it is now (flags and the environment of ocis server still win)", (*control.Client).Restart))
}
