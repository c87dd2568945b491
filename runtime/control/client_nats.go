package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// Bounds of a relayed call. A node that is gone answers at once (NATS
// "no responders"); these bound the wait for one that hangs (SIGSTOP, a
// cut network) until NATS notices. A command may have to wait for a
// service to drain, a list never does.
const (
	RelayListTimeout    = 5 * time.Second
	RelayCommandTimeout = 20 * time.Second
)

// NATSClient relays commands to other nodes' runtimes over NATS, with this
// node's runtime token.
type NATSClient struct {
	nc    *nats.Conn
	token string
}

// NewNATSClient returns a relay over nc.
func NewNATSClient(nc *nats.Conn, token string) *NATSClient {
	return &NATSClient{nc: nc, token: token}
}

// List asks node for its services.
func (c *NATSClient) List(ctx context.Context, node string) ([]supervisor.Status, error) {
	var out []supervisor.Status
	err := c.request(ctx, node, VerbList, nil, RelayListTimeout, &out)
	return out, err
}

// Command asks node to kill, run or restart service name.
func (c *NATSClient) Command(ctx context.Context, node, verb, name string) (supervisor.Status, error) {
	var out supervisor.Status
	body, err := json.Marshal(commandBody{Name: name})
	if err != nil {
		return out, err
	}
	err = c.request(ctx, node, verb, body, RelayCommandTimeout, &out)
	return out, err
}

func (c *NATSClient) request(ctx context.Context, node, verb string, body []byte, timeout time.Duration, out any) error {
	if err := registry.ValidateNodeName(node); err != nil {
		return fmt.Errorf("%w: %v", apierr.ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg := nats.NewMsg(Subject(node, verb))
	msg.Header.Set(tokenHeader, "Bearer "+c.token)
	msg.Data = body
	resp, err := c.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: node %s is not reachable: no runtime of that name answers on NATS", apierr.ErrUnavailable, node)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: node %s is not reachable: no answer within %s", apierr.ErrUnavailable, node, timeout)
	case err != nil:
		return fmt.Errorf("%w: node %s is not reachable: %v", apierr.ErrUnavailable, node, err)
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		var we wireError
		if json.Unmarshal(resp.Data, &we) != nil || we.Code == "" {
			we = wireError{Code: apierr.CodeInternal, Reason: string(apierr.CodeInternal), Message: resp.Header.Get(micro.ErrorHeader)}
		}
		if we.Reason == "" {
			we.Reason = string(we.Code)
		}
		return apierr.New(we.Code, we.Reason, fmt.Sprintf("node %s: %s", node, we.Message))
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return fmt.Errorf("%w: node %s: decode answer: %v", apierr.ErrInternal, node, err)
	}
	return nil
}
