package main_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocis-runtime/ocis/pkg/transport"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
	"github.com/ocis-runtime/ocis/services/activity"
)

// lagOn returns the lag a listing shows for service on node, nil when none.
func lagOn(all []supervisor.Status, node, service string) *uint64 {
	for _, s := range all {
		if s.Node == node && s.Name == service {
			return s.Lag
		}
	}
	return nil
}

// TestMultiNodeActivity: activity on node 3 sees what happens through
// node 2, events crossing the clustered JetStream; node 1's `ocis list
// --all` shows the lag of node 3's consumer.
func TestMultiNodeActivity(t *testing.T) {
	c := newCluster(t, 3)
	n1 := c.start(1, "proxy", "users", "nats")
	n2 := c.start(2, "proxy", "storage", "nats")
	n3 := c.start(3, "activity", "nats")
	for _, n := range []*mnode{n1, n2} {
		n.waitList("every node's services running", 30*time.Second, func(all []supervisor.Status) bool {
			return stateOn(all, "n1", "users") == supervisor.StateRunning &&
				stateOn(all, "n2", "storage") == supervisor.StateRunning &&
				stateOn(all, "n3", "activity") == supervisor.StateRunning
		})
	}

	body := strings.NewReader(`{"username":"alice","password":"alice-pass-1"}`)
	if status := n1.call(http.MethodPost, "/api/v1/users", n1.login("admin", testAdminPassword), body, nil); status != http.StatusCreated {
		t.Fatalf("create alice through n1: status %d", status)
	}
	token := n2.login("alice", "alice-pass-1")
	upload(t, n2, "/api/v1/files/from-n2.txt", token, []byte("hello from node 2"))

	// Read straight from node 3's activity, and through node 1's proxy,
	// which routes the activity API to node 3.
	ctx := transport.WithBearer(context.Background(), token)
	for _, base := range []string{"http://" + n3.addr("activity"), "http://" + n1.addr("proxy")} {
		cl, err := activity.NewClient(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		waitFor(t, "the upload through n2 in the activity at "+base, 30*time.Second, func() bool {
			got, err = activityLines(ctx, cl)
			return err == nil && slices.Equal(got, []string{"file.written from-n2.txt", "user.login alice", "user.created alice"})
		})
	}

	n1.waitList("activity's lag on n3", 15*time.Second, func(all []supervisor.Status) bool {
		lag := lagOn(all, "n3", "activity")
		return lag != nil && *lag == 0
	})
}
