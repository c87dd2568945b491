// Command ocis is one binary that embeds a family of services and the
// runtime that orchestrates them.
package main

import (
	"os"

	"github.com/ocis-runtime/ocis/runtime"
	"github.com/ocis-runtime/ocis/services"
)

func main() {
	os.Exit(runtime.Main(os.Args[1:], services.Catalogue(), os.Stdout, os.Stderr))
}
