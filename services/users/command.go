package users

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"golang.org/x/crypto/bcrypt"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/endpoint"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Name is the service's name in the catalogue, on the CLI and in env vars.
const Name = "users"

// Descriptor describes the users service to the runtime.
func Descriptor() service.Descriptor {
	api := API(&Endpoints{})
	d := service.Descriptor{
		Name:      Name,
		Summary:   "accounts and login tokens",
		HTTPAddr:  "127.0.0.1:9140",
		DebugAddr: "127.0.0.1:9145",
		Routes:    api.Prefixes(),
		Public:    api.Public(),
	}
	d.NewConfig = func() service.Config {
		return &Config{
			base:       service.NewBase(d, true),
			AdminUser:  "admin",
			TokenTTL:   24 * time.Hour,
			BcryptCost: bcrypt.DefaultCost,
			Guard: GuardConfig{
				// One CPU is left to everything but password checks.
				Slots:     max(1, runtime.GOMAXPROCS(0)-1),
				SlotWait:  3 * time.Second,
				UserBurst: 10,
				AddrBurst: 20,
				Refill:    6 * time.Second,
				Tarpit:    time.Second,
			},
			TrustedProxies: transport.DefaultTrustedProxies(),
			PublishEvents:  true,
		}
	}
	return d
}

// Config holds the users service's settings.
type Config struct {
	base              service.Base
	AdminUser         string
	AdminPassword     string
	AdminPasswordHash string
	TokenTTL          time.Duration
	BcryptCost        int
	Guard             GuardConfig
	TrustedProxies    []netip.Prefix
	// PublishEvents: the service publishes its events (docs/events.md);
	// false publishes none and leaves NATS alone.
	PublishEvents bool
}

// Base implements service.Config.
func (c *Config) Base() *service.Base { return &c.base }

// RegisterFlags implements service.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.base.RegisterFlags(fs)
	config.CheckedVar(fs, &c.AdminUser, "admin-user", c.AdminUser, "name of the admin account created at first start", CheckUsername)
	fs.StringVar(&c.AdminPassword, "admin-password", c.AdminPassword, "password of the admin account created at first start; wins over the hash")
	fs.StringVar(&c.AdminPasswordHash, "admin-password-hash", c.AdminPasswordHash, "bcrypt hash of the admin password (written by ocis init)")
	config.DurationVar(fs, &c.TokenTTL, "token-ttl", c.TokenTTL, "how long a login token is accepted")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", c.BcryptCost, "bcrypt cost of password hashes (4 to 31)")
	config.PositiveIntVar(fs, &c.Guard.Slots, "login-slots", c.Guard.Slots, "password checks that may run at once (default: the CPUs less one)")
	config.PositiveIntVar(fs, &c.Guard.UserBurst, "login-user-burst", c.Guard.UserBurst, "failed logins of one username allowed before 429")
	config.PositiveIntVar(fs, &c.Guard.AddrBurst, "login-addr-burst", c.Guard.AddrBurst, "failed logins from one client address allowed before 429")
	config.DurationVar(fs, &c.Guard.Refill, "login-refill", c.Guard.Refill, "one more failed login is allowed after each such period")
	config.PrefixListVar(fs, &c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "peers whose X-Forwarded-For names the client (comma list of prefixes)")
	fs.BoolVar(&c.PublishEvents, "publish-events", c.PublishEvents, "publish user.created, user.deleted, user.login and user.password_changed to the event bus (the activity log shows them); false: publish none")
}

// Validate implements service.Config. The admin's name is checked as it
// is read (--admin-user); the password given in the config follows the
// rule of every password, and a hash must be one bcrypt can read.
func (c *Config) Validate(env service.Env) error {
	var errs []error
	errs = append(errs, c.base.Validate())
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, config.Invalid("bcrypt-cost", "bcrypt cost %d is outside %d to %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.AdminPassword != "" {
		// The rule of every new account (validate), which the admin
		// account created at first start follows too.
		if err := validate(CreateUserRequest{Username: c.AdminUser, Password: c.AdminPassword}); err != nil {
			errs = append(errs, config.Invalid("admin-password", "%v", err))
		}
	} else if c.AdminPasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(c.AdminPasswordHash)); err != nil {
			errs = append(errs, config.Invalid("admin-password-hash", "not a bcrypt hash (%v); `ocis init` writes one", err))
		}
	}
	errs = append(errs, service.ValidateNATS(env))
	return errors.Join(errs...)
}

// Build implements service.Config.
func (c *Config) Build(env service.Env) (service.Runner, error) {
	if err := c.Validate(env); err != nil {
		return nil, err
	}
	keys, err := env.Shared.Keys()
	if err != nil {
		return nil, err
	}
	return &server{cfg: *c, env: env, keys: keys}, nil
}

// server is one started instance of the users service.
type server struct {
	cfg  Config
	env  service.Env
	keys *auth.Keys
}

// Run opens the store, bootstraps the admin and serves until ctx is done.
func (s *server) Run(ctx context.Context, up func(service.Addrs)) (err error) {
	logger := s.env.Logger
	st, err := openStore(s.cfg.base.DataPath(s.env.Shared, Name))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.close()) }()

	svc, err := newAccounts(st, s.keys, s.env.Shared.Revocations, s.cfg.TokenTTL, s.cfg.BcryptCost, s.cfg.Guard)
	if err != nil {
		return err
	}
	svc.logger = logger
	// The publisher exists before the bootstrap, whose user.created it
	// queues; its actor sends once the group runs.
	reg := service.NewRegistry()
	pub, actors, closeNATS, err := service.Events(s.env, Name, s.cfg.PublishEvents, logger, reg, &s.cfg.base)
	if err != nil {
		return err
	}
	defer closeNATS() // after the group: the publisher has drained by then
	svc.events = pub
	var created bool
	if s.cfg.AdminPassword == "" && s.cfg.AdminPasswordHash != "" {
		created, err = svc.bootstrapAdminHash(s.cfg.AdminUser, s.cfg.AdminPasswordHash)
	} else {
		created, err = svc.bootstrapAdmin(s.cfg.AdminUser, s.cfg.AdminPassword)
	}
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if created {
		level.Info(logger).Log("msg", "admin account created", "username", s.cfg.AdminUser)
	}

	return service.ServeAPIWith(ctx, up, s.env, Name, &s.cfg.base, reg, func(chain endpoint.Chain, logger log.Logger) http.Handler {
		return NewHTTPHandler(MakeEndpoints(svc, chain), logger, s.keys, s.cfg.TrustedProxies)
	}, actors...)
}
