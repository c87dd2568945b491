package supervisor

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/pkg/service"
)

func TestSelectionResolve(t *testing.T) {
	cat := service.Catalogue{
		{Name: "proxy"}, {Name: "users"}, {Name: "storage"}, {Name: "extra", Optional: true},
	}
	tests := []struct {
		name    string
		sel     Selection
		want    []string
		wantErr string
	}{
		{"default set leaves optional out", Selection{}, []string{"proxy", "users", "storage"}, ""},
		{"run only these, in catalogue order", Selection{Run: []string{"storage", "users"}}, []string{"users", "storage"}, ""},
		{"run picks an optional one", Selection{Run: []string{"extra"}}, []string{"extra"}, ""},
		{"exclude", Selection{Exclude: []string{"storage"}}, []string{"proxy", "users"}, ""},
		{"add an optional one", Selection{Add: []string{"extra"}}, []string{"proxy", "users", "storage", "extra"}, ""},
		{"add to a run list", Selection{Run: []string{"users"}, Add: []string{"proxy"}}, []string{"proxy", "users"}, ""},
		{"exclude wins over add", Selection{Add: []string{"extra"}, Exclude: []string{"extra"}}, []string{"proxy", "users", "storage"}, ""},
		{"exclude wins over run", Selection{Run: []string{"users", "proxy"}, Exclude: []string{"proxy"}}, []string{"users"}, ""},
		{"unknown in run", Selection{Run: []string{"users", "nosuch"}}, nil, `unknown service "nosuch"; known services: proxy, users, storage, extra`},
		{"unknown in exclude", Selection{Exclude: []string{"nosuch"}}, nil, `unknown service "nosuch"`},
		{"unknown in add", Selection{Add: []string{"nosuch"}}, nil, `unknown service "nosuch"`},
		{"nothing left", Selection{Exclude: []string{"proxy", "users", "storage"}}, nil, "no service selected to run; known services: proxy, users, storage, extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sel.Resolve(cat)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Resolve = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	t.Run("an unknown name is an UnknownError", func(t *testing.T) {
		_, err := Selection{Run: []string{"nosuch"}}.Resolve(cat)
		var unknown *service.UnknownError
		if !errors.As(err, &unknown) || unknown.Name != "nosuch" {
			t.Errorf("err = %#v, want *service.UnknownError naming nosuch", err)
		}
	})
}
