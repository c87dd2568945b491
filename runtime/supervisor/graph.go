package supervisor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocis-runtime/ocis/pkg/service"
)

// CheckGraph verifies that every dependency and every fronted service of the
// enabled services is known, and that together they form no cycle: a cycle
// of DependsOn would never start, and one through Fronts would never stop,
// each service waiting for another to stop first. A service that is known
// but not enabled here is left out: it may run on another node.
func CheckGraph(cat service.Catalogue, enabled []string) error {
	deps := map[string][]string{}
	for _, name := range enabled {
		d, _ := cat.Lookup(name)
		for _, rel := range []struct {
			verb  string
			names []string
		}{{"depends on", d.DependsOn}, {"fronts", d.Fronts}} {
			for _, dep := range rel.names {
				if _, ok := cat.Lookup(dep); !ok {
					return fmt.Errorf("service %s %s unknown service %q", name, rel.verb, dep)
				}
				if slices.Contains(enabled, dep) {
					deps[name] = append(deps[name], dep)
				}
			}
		}
	}
	// Depth-first search for a back edge; the path names the cycle.
	const (
		unseen = iota
		open
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(string) error
	visit = func(n string) error {
		switch mark[n] {
		case open:
			i := slices.Index(path, n)
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(path[i:], n), " -> "))
		case done:
			return nil
		}
		mark[n] = open
		path = append(path, n)
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, n := range enabled {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}
