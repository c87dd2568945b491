package supervisor

import (
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/service"
)

func TestCheckGraph(t *testing.T) {
	d := func(name string, deps, fronts []string) service.Descriptor {
		return service.Descriptor{Name: name, DependsOn: deps, Fronts: fronts}
	}
	tests := []struct {
		name    string
		cat     service.Catalogue
		enabled []string
		wantErr string // "" means none
	}{
		{"no edges", service.Catalogue{d("a", nil, nil), d("b", nil, nil)}, []string{"a", "b"}, ""},
		{"chain", service.Catalogue{d("a", []string{"b"}, nil), d("b", []string{"c"}, nil), d("c", nil, nil)}, []string{"a", "b", "c"}, ""},
		{"fronts", service.Catalogue{d("proxy", nil, []string{"a", "b"}), d("a", nil, nil), d("b", []string{"a"}, nil)}, []string{"proxy", "a", "b"}, ""},
		{"unknown dependency", service.Catalogue{d("a", []string{"nosuch"}, nil)}, []string{"a"}, `service a depends on unknown service "nosuch"`},
		{"unknown fronted", service.Catalogue{d("a", nil, []string{"nosuch"})}, []string{"a"}, `service a fronts unknown service "nosuch"`},
		{"dependency cycle", service.Catalogue{d("a", []string{"b"}, nil), d("b", []string{"a"}, nil)}, []string{"a", "b"}, "dependency cycle: a -> b -> a"},
		// A service that depends on what fronts it would wait for it
		// to stop while being waited for.
		{"cycle through fronts", service.Catalogue{d("proxy", nil, []string{"a"}), d("a", []string{"proxy"}, nil)}, []string{"proxy", "a"}, "dependency cycle: proxy -> a -> proxy"},
		{"self dependency", service.Catalogue{d("a", []string{"a"}, nil)}, []string{"a"}, "dependency cycle: a -> a"},
		{"long cycle", service.Catalogue{d("a", []string{"b"}, nil), d("b", []string{"c"}, nil), d("c", []string{"a"}, nil)}, []string{"a", "b", "c"}, "dependency cycle: a -> b -> c -> a"},
		{"dependency not enabled here runs elsewhere", service.Catalogue{d("a", []string{"b"}, nil), d("b", nil, nil)}, []string{"a"}, ""},
		{"unknown dependency of a service not enabled is not checked", service.Catalogue{d("a", nil, nil), d("b", []string{"nosuch"}, nil)}, []string{"a"}, ""},
		{"cycle left out with a service not enabled", service.Catalogue{d("proxy", nil, []string{"a"}), d("a", []string{"proxy"}, nil)}, []string{"proxy"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckGraph(tt.cat, tt.enabled)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
