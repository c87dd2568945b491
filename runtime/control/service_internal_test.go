package control

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/go-kit/log"

	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// lossDuringLag are peers whose node n2 leaves the registry while the
// lag of a listing is asked, as when the server n2 took down led the
// events stream and the lag waits its whole bound.
type lossDuringLag struct {
	mu    sync.Mutex
	nodes []registry.Node
}

func (p *lossDuringLag) Nodes() []registry.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.nodes)
}

func (p *lossDuringLag) List(context.Context, string) ([]supervisor.Status, error) { return nil, nil }

func (p *lossDuringLag) Command(context.Context, string, string, string) (supervisor.Status, error) {
	return supervisor.Status{}, nil
}

func (p *lossDuringLag) Lag(_ context.Context, statuses []supervisor.Status) {
	for i := range statuses {
		if statuses[i].Name == "activity" {
			lag := uint64(7)
			statuses[i].Lag = &lag
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes = slices.DeleteFunc(p.nodes, func(n registry.Node) bool { return n.Node == "n2" })
}

// TestListAllAfterLag: a node the registry drops while the lag is asked
// is not in the listing, and the lag found stays on the others.
func TestListAllAfterLag(t *testing.T) {
	node := func(name string, services ...string) registry.Node {
		n := registry.Node{NodeRecord: registry.NodeRecord{Node: name}}
		for _, s := range services {
			n.Services = append(n.Services, registry.ServiceRecord{Name: s, State: registry.StateRunning})
		}
		return n
	}
	peers := &lossDuringLag{nodes: []registry.Node{node("n1"), node("n2", "storage"), node("n3", "storage", "activity")}}
	sup := supervisor.New(log.NewNopLogger(), supervisor.Policy{}, "n1", nil, registry.NewMemory(), nil)
	s := New(sup, "n1", peers)
	all, err := s.List(context.Background(), ListRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range all {
		lag := "-"
		if st.Lag != nil {
			lag = "7"
		}
		got = append(got, st.Node+"/"+st.Name+"/"+lag)
	}
	if want := []string{"n3/storage/-", "n3/activity/7"}; !slices.Equal(got, want) {
		t.Errorf("listing %v, want %v", got, want)
	}
}
