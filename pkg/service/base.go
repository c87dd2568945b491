package service

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/logging"
	"github.com/ocis-runtime/ocis/pkg/tracing"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

// Base holds the settings every service has.
type Base struct {
	HTTPAddr        string
	DebugAddr       string
	ShutdownTimeout time.Duration
	RequestTimeout  time.Duration
	// BodyTimeout bounds the time a request, headers and body, may take
	// to arrive; authenticated uploads get an idle deadline instead.
	BodyTimeout time.Duration
	Pprof       bool
	// DataDir is where a service that keeps data keeps it; empty means
	// <base-data-path>/<service>.
	DataDir string

	keepsData bool
	// addrFlag and addrUsage name and describe the flag of HTTPAddr;
	// empty means "http-addr", the HTTP API.
	addrFlag, addrUsage string
}

// NewBase returns the base settings of d with its default addresses.
func NewBase(d Descriptor, keepsData bool) Base {
	return Base{
		HTTPAddr:        d.HTTPAddr,
		DebugAddr:       d.DebugAddr,
		ShutdownTimeout: 30 * time.Second,
		RequestTimeout:  30 * time.Second,
		BodyTimeout:     transport.DefaultBodyTimeout,
		keepsData:       keepsData,
	}
}

// SetAddrFlag names the flag of the primary address (HTTPAddr) for a
// service whose primary listener is not an HTTP API: the nats service calls
// SetAddrFlag("addr", …), so its client port is --addr and OCIS_NATS_ADDR.
// It must be called before RegisterFlags.
func (b *Base) SetAddrFlag(name, usage string) {
	b.addrFlag, b.addrUsage = name, usage
}

// RegisterFlags defines the base flags.
func (b *Base) RegisterFlags(fs *flag.FlagSet) {
	addrFlag, addrUsage := "http-addr", "address of the HTTP API"
	if b.addrFlag != "" {
		addrFlag, addrUsage = b.addrFlag, b.addrUsage
	}
	config.AddrVar(fs, &b.HTTPAddr, addrFlag, b.HTTPAddr, addrUsage)
	config.AddrVar(fs, &b.DebugAddr, "debug-addr", b.DebugAddr, "address of /healthz, /readyz and /metrics")
	config.DurationVar(fs, &b.ShutdownTimeout, "shutdown-timeout", b.ShutdownTimeout, "how long in-flight requests may drain on stop")
	config.DurationVar(fs, &b.RequestTimeout, "request-timeout", b.RequestTimeout, "how long one API request may take")
	config.DurationVar(fs, &b.BodyTimeout, "body-timeout", b.BodyTimeout, "how long a request's headers and body may take to arrive; an authenticated upload may take longer while bytes keep coming")
	fs.BoolVar(&b.Pprof, "debug.pprof", b.Pprof, "serve /debug/pprof/ on the debug address")
	if b.keepsData {
		fs.StringVar(&b.DataDir, "data-dir", b.DataDir, "where the service keeps its data (default <base-data-path>/<service>)")
	}
}

// DataPath resolves the data directory of service name.
func (b *Base) DataPath(shared *Shared, name string) string {
	if b.DataDir != "" {
		return b.DataDir
	}
	return filepath.Join(shared.BaseDataPath, name)
}

// KeepsData reports whether the service keeps data (has --data-dir):
// its data dir is locked for the process that runs it.
func (b *Base) KeepsData() bool { return b.keepsData }

// Shared holds the settings all services share; their env vars carry no
// service name (OCIS_LOG_LEVEL).
type Shared struct {
	BaseDataPath string
	ConfigFile   string
	LogLevel     string
	LogFormat    string
	// LogFile, when set, receives every log line as well as stderr.
	LogFile   string
	JWTSecret string
	// Revocations is the process's one list of withdrawn tokens: every
	// service's keys check it, so a revocation reaches them all at once.
	Revocations *auth.Revocations
	// Tracing is where the process's spans go (OCIS_TRACING_*); the
	// process builds its tracing.Tracing from it once.
	Tracing tracing.Config
}

// NewShared returns the shared defaults.
func NewShared() *Shared {
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return &Shared{BaseDataPath: filepath.Join(home, ".ocis"), LogLevel: "info", LogFormat: "logfmt", Revocations: auth.NewRevocations(),
		Tracing: tracing.DefaultConfig()}
}

// RegisterFlags defines the shared flags.
func (s *Shared) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.BaseDataPath, "base-data-path", s.BaseDataPath, "where services keep their data and the config file")
	fs.StringVar(&s.ConfigFile, "config-file", s.ConfigFile, "config file of KEY=VALUE lines (default <base-data-path>/ocis.env)")
	config.EnumVar(fs, &s.LogLevel, "log-level", s.LogLevel, "lowest level logged", logging.Levels()...)
	config.EnumVar(fs, &s.LogFormat, "log-format", s.LogFormat, "log line format", logging.Formats()...)
	fs.StringVar(&s.LogFile, "log-file", s.LogFile, "also write every log line to this file (appended, mode 0600)")
	fs.StringVar(&s.JWTSecret, "jwt-secret", s.JWTSecret, "shared secret that signs tokens (written by ocis init)")
	s.Tracing.RegisterFlags(fs)
}

// Keys returns the token keys of the shared JWT secret, checking the
// process's revocations; the error tells an operator how to get one.
func (s *Shared) Keys() (*auth.Keys, error) {
	keys, err := auth.NewKeys(s.JWTSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: run `ocis init` or set OCIS_JWT_SECRET", err)
	}
	if s.Revocations != nil {
		// Read before the service serves: a deletion recorded by any
		// process on this machine is refused from the first request.
		if err := s.Revocations.UseFile(s.RevocationsPath()); err != nil {
			return nil, err
		}
	}
	return keys.CheckRevocations(s.Revocations), nil
}

// RevocationsPath is the file that shares revoked tokens between the
// processes of this machine.
func (s *Shared) RevocationsPath() string {
	return filepath.Join(s.BaseDataPath, "revocations.json")
}

// ConfigPath is the config file in use.
func (s *Shared) ConfigPath() string {
	if s.ConfigFile != "" {
		return s.ConfigFile
	}
	return filepath.Join(s.BaseDataPath, "ocis.env")
}

// Dialable turns a listen address into one a client can dial: a wildcard
// host (":9140", "0.0.0.0:9140") becomes loopback.
func Dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
