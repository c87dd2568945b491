package runtime

import (
	"context"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
)

// Control is the business of the control API: what operators can ask of the
// runtime. The supervisor implements it; so does the HTTP client.
type Control interface {
	List(ctx context.Context, _ endpoint.Empty) ([]Status, error)
	Kill(ctx context.Context, req ServiceRequest) (Status, error)
	Run(ctx context.Context, req ServiceRequest) (Status, error)
	Restart(ctx context.Context, req ServiceRequest) (Status, error)
}

// ServiceRequest names the service a command is for.
type ServiceRequest struct {
	Name string `json:"-"`
}

// Control returns the supervisor as the business of the control API.
func (s *Supervisor) Control() Control { return control{s} }

// control adapts a Supervisor to Control.
type control struct{ sup *Supervisor }

var _ Control = control{}

func (c control) List(context.Context, endpoint.Empty) ([]Status, error) {
	return c.sup.Statuses(), nil
}

func (c control) Kill(ctx context.Context, req ServiceRequest) (Status, error) {
	return c.sup.Kill(ctx, req.Name)
}

func (c control) Run(ctx context.Context, req ServiceRequest) (Status, error) {
	return c.sup.Start(ctx, req.Name)
}

func (c control) Restart(ctx context.Context, req ServiceRequest) (Status, error) {
	return c.sup.Restart(ctx, req.Name)
}
