package tracing

import (
	"context"

	"github.com/go-kit/kit/endpoint"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// Endpoint returns the middleware that makes each call of endpoint name a
// span, "<service>.<endpoint>" ("storage.get"), a child of the request's
// server span. A call that fails carries its error kind (ocis.outcome);
// only the kinds that are the service's fault (internal, unavailable,
// insufficient_storage) mark the span as an error. Off, the middleware
// returns the endpoint as it is.
func (s *Service) Endpoint(name string) endpoint.Middleware {
	if s == nil {
		return func(next endpoint.Endpoint) endpoint.Endpoint { return next }
	}
	spanName := s.name + "." + name
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (response any, err error) {
			if !sampled(ctx) {
				return next(ctx, request) // not recorded: no span to make
			}
			ctx, span := s.tracer.Start(ctx, spanName)
			defer func() {
				if err != nil && span.IsRecording() {
					code := apierr.CodeOf(err)
					span.SetAttributes(attribute.String("ocis.outcome", string(code)))
					if serverFault(code) {
						span.SetStatus(codes.Error, string(code))
					}
				}
				span.End()
			}()
			return next(ctx, request)
		}
	}
}

// serverFault reports whether an error of kind code is the service's
// fault rather than the caller's: the 5xx kinds.
func serverFault(code apierr.Code) bool {
	switch code {
	case apierr.CodeInternal, apierr.CodeUnavailable, apierr.CodeInsufficientSpace:
		return true
	}
	return false
}
