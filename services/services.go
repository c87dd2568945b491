// Package services lists the family: every service the ocis binary embeds.
package services

import (
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
	"github.com/ocis-runtime/ocis/services/users"
)

// Catalogue returns the descriptors of every embedded service, in the order
// the CLI lists them.
func Catalogue() service.Catalogue {
	return service.Catalogue{
		proxy.Descriptor(),
		users.Descriptor(),
		storage.Descriptor(),
	}
}
