package supervisor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// Selection is how an operator picks the services to run.
type Selection struct {
	Run     []string // only these
	Exclude []string // all but these
	Add     []string // the default set plus these
}

// Resolve returns the enabled services in catalogue order, or an error that
// names an unknown service and the known ones.
func (s Selection) Resolve(cat service.Catalogue) ([]string, error) {
	for _, list := range [][]string{s.Run, s.Exclude, s.Add} {
		for _, name := range list {
			if _, ok := cat.Lookup(name); !ok {
				return nil, &service.UnknownError{Name: name, Known: cat.Names()}
			}
		}
	}
	var out []string
	for _, d := range cat {
		on := d.Default()
		if len(s.Run) > 0 {
			on = slices.Contains(s.Run, d.Name)
		}
		if slices.Contains(s.Add, d.Name) {
			on = true
		}
		if slices.Contains(s.Exclude, d.Name) {
			on = false
		}
		if on {
			out = append(out, d.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service selected to run; known services: %s", strings.Join(cat.Names(), ", "))
	}
	return out, nil
}
