// Package control is the runtime's control API, laid out like every service
// of the family: the business interface and its implementation over a
// supervisor here, endpoints.go, transport_http.go and client.go beside it.
// The CLI's list, kill, run and restart are thin clients of it.
package control

import (
	"context"

	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// Service is what operators can ask of the runtime. The supervisor
// implements it in the runtime's process; Client implements it across HTTP.
type Service interface {
	List(ctx context.Context, _ endpoint.Empty) ([]supervisor.Status, error)
	Kill(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
	Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
	Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error)
}

// ServiceRequest names the service a command is for.
type ServiceRequest struct {
	Name string `json:"-"`
}

// New returns the control API over sup.
func New(sup *supervisor.Supervisor) Service { return service{sup} }

// service adapts a Supervisor to Service.
type service struct{ sup *supervisor.Supervisor }

var _ Service = service{}

func (s service) List(context.Context, endpoint.Empty) ([]supervisor.Status, error) {
	return s.sup.Statuses(), nil
}

func (s service) Kill(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return s.sup.Kill(ctx, req.Name)
}

func (s service) Run(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return s.sup.Start(ctx, req.Name)
}

func (s service) Restart(ctx context.Context, req ServiceRequest) (supervisor.Status, error) {
	return s.sup.Restart(ctx, req.Name)
}
