package natsconn

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplicaChoices are the replica counts to try when creating a bucket or a
// stream: the one configured, or, for 0, three down to one, so that a
// single server and a cluster still forming both get what they can hold.
func ReplicaChoices(configured int) []int {
	if configured > 0 {
		return []int{configured}
	}
	return []int{3, 2, 1}
}

// CreateKeyValue creates the bucket kvc with as many replicas as the
// cluster can place (kvc.Replicas is set to each choice in turn). A bucket
// that another node created meanwhile is opened instead.
func CreateKeyValue(ctx context.Context, js jetstream.JetStream, kvc jetstream.KeyValueConfig, configured int) (jetstream.KeyValue, error) {
	var err error
	for _, r := range ReplicaChoices(configured) {
		kvc.Replicas = r
		var kv jetstream.KeyValue
		kv, err = js.CreateKeyValue(ctx, kvc)
		if errors.Is(err, jetstream.ErrBucketExists) {
			return js.KeyValue(ctx, kvc.Bucket)
		}
		if err == nil || !TooFewServers(err) {
			return kv, err
		}
	}
	return nil, err
}

// TooFewServers reports whether err refuses a replica count the cluster
// cannot place.
func TooFewServers(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10005, // no suitable peers for placement
		10023, // insufficient resources
		10074: // replicas > 1 not supported in non-clustered mode
		return true
	}
	return false
}
