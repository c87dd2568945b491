package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ocis-runtime/ocis/pkg/apierr"
)

// NATS names of the runtime's micro service: `nats micro ls` lists one
// instance of ServiceName per node, and node n's commands are on
// ocis.runtime.<n>.list|kill|run|restart.
const (
	ServiceName   = "ocis-runtime"
	SubjectPrefix = "ocis.runtime"
	// apiVersion is the version of the NATS API (micro wants semver); the
	// binary's own version is in the service's metadata.
	apiVersion = "1.0.0"
	// tokenHeader carries the runtime token on every request, as
	// "Bearer <token>", like the HTTP API's Authorization header.
	tokenHeader = "Authorization"
)

// ErrWrongToken is a relayed command the receiving node refused because it
// carried another runtime token than its own: every node of one system
// needs the same OCIS_RUNTIME_TOKEN (ocis init writes it in ocis.env).
var ErrWrongToken = apierr.New(apierr.CodeUnauthenticated, "runtime.wrong_token", "wrong runtime token")

// Subject is the NATS subject of verb on node's runtime.
func Subject(node, verb string) string { return SubjectPrefix + "." + node + "." + verb }

// commandBody is a kill, run or restart request over NATS.
type commandBody struct {
	Name string `json:"name"`
}

// ServeNATS serves this node's commands as the NATS micro service
// ocis-runtime, on the subjects of Subject(node, …), until the returned
// service is stopped. Every request must carry the runtime token, compared
// in constant time: NATS credentials alone cannot command a runtime.
// Commands run in goroutines of their own, so a restart that waits for a
// drain never holds up a list.
func ServeNATS(nc *nats.Conn, node, version, token string, s Service, logger log.Logger) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     apiVersion,
		Description: "control of one ocis node's runtime: list, kill, run, restart",
		Metadata:    map[string]string{"node": node, "version": version},
	})
	if err != nil {
		return nil, err
	}
	h := natsHandler{token: sha256.Sum256([]byte(token)), logger: log.With(logger, "component", "control-nats")}
	g := svc.AddGroup(SubjectPrefix + "." + node)
	endpoints := []struct {
		verb string
		call func(ctx context.Context, name string) (any, error)
	}{
		{VerbList, func(ctx context.Context, _ string) (any, error) { return s.List(ctx, ListRequest{}) }},
		{VerbKill, func(ctx context.Context, name string) (any, error) { return s.Kill(ctx, ServiceRequest{Name: name}) }},
		{VerbRun, func(ctx context.Context, name string) (any, error) { return s.Run(ctx, ServiceRequest{Name: name}) }},
		{VerbRestart, func(ctx context.Context, name string) (any, error) { return s.Restart(ctx, ServiceRequest{Name: name}) }},
	}
	for _, e := range endpoints {
		if err := g.AddEndpoint(e.verb, h.handler(e.verb, e.call)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

type natsHandler struct {
	token  [sha256.Size]byte
	logger log.Logger
}

func (h natsHandler) handler(verb string, call func(ctx context.Context, name string) (any, error)) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		go func() {
			resp, err := h.serve(req, verb, call)
			if err != nil {
				respondError(req, h.logger, err)
				return
			}
			if err := req.RespondJSON(resp); err != nil {
				level.Warn(h.logger).Log("msg", "answer a relayed command", "verb", verb, "err", err)
			}
		}()
	})
}

func (h natsHandler) serve(req micro.Request, verb string, call func(ctx context.Context, name string) (any, error)) (any, error) {
	// Hashing both sides makes the comparison constant-time whatever the
	// lengths.
	given := sha256.Sum256([]byte(strings.TrimPrefix(req.Headers().Get(tokenHeader), "Bearer ")))
	if subtle.ConstantTimeCompare(given[:], h.token[:]) != 1 {
		level.Warn(h.logger).Log("msg", "relayed command refused: wrong runtime token", "verb", verb)
		return nil, fmt.Errorf("%w (OCIS_RUNTIME_TOKEN must be the same on every node)", ErrWrongToken)
	}
	var body commandBody
	if verb != VerbList {
		if err := json.Unmarshal(req.Data(), &body); err != nil || body.Name == "" {
			return nil, fmt.Errorf(`%w: want {"name":"<service>"}`, apierr.ErrInvalidArgument)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	level.Info(h.logger).Log("msg", "relayed command", "verb", verb, "target", body.Name)
	return call(ctx, body.Name)
}

// wireError is an error as it travels in a NATS answer: the body of the
// HTTP API's error shape.
type wireError struct {
	Code    apierr.Code `json:"code"`
	Reason  string      `json:"reason"`
	Message string      `json:"message"`
}

// respondError answers req with err's code and reason, and the message
// unless the error is internal (logged here in full, never sent).
func respondError(req micro.Request, logger log.Logger, err error) {
	code := apierr.CodeOf(err)
	message := err.Error()
	if code == apierr.CodeInternal {
		level.Error(logger).Log("msg", "internal error", "err", err)
		message = "internal error"
	}
	data, _ := json.Marshal(wireError{Code: code, Reason: apierr.ReasonOf(err), Message: message})
	if rerr := req.Error(string(code), message, data); rerr != nil {
		level.Warn(logger).Log("msg", "answer a relayed command", "err", rerr)
	}
}
