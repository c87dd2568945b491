package tracing

import (
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The exporters OCIS_TRACING_EXPORTER names.
const (
	// ExporterNone records nothing: no span is made, no header read.
	ExporterNone = "none"
	// ExporterStdout writes each finished span as one JSON line, to
	// standard output or to the file OCIS_TRACING_ENDPOINT names.
	ExporterStdout = "stdout"
	// ExporterOTLP sends spans over OTLP/HTTP to OCIS_TRACING_ENDPOINT
	// (default http://localhost:4318/v1/traces).
	ExporterOTLP = "otlp"
)

// Exporters lists the values of OCIS_TRACING_EXPORTER.
func Exporters() []string { return []string{ExporterNone, ExporterStdout, ExporterOTLP} }

// Config is the tracing of a process: which exporter, where it sends, and
// which share of the traces begun here it keeps. It is a shared setting
// (OCIS_TRACING_*): every service of a process traces alike.
type Config struct {
	Exporter string
	// Endpoint is the OTLP/HTTP URL for otlp, a file to append to for
	// stdout; empty means the exporter's default.
	Endpoint string
	// SampleRatio is the share of traces begun in this process that are
	// recorded, from 0 to 1. A request that arrives with a traceparent
	// follows the caller's decision instead, so a trace is whole or absent.
	SampleRatio float64
}

// DefaultConfig is tracing off, every trace kept once it is on.
func DefaultConfig() Config { return Config{Exporter: ExporterNone, SampleRatio: 1} }

// RegisterFlags defines --tracing-exporter, --tracing-endpoint and
// --tracing-sample-ratio (OCIS_TRACING_EXPORTER, …_ENDPOINT, …_SAMPLE_RATIO).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&exporterValue{&c.Exporter}, "tracing-exporter", "where spans go: "+strings.Join(Exporters(), ", "))
	fs.StringVar(&c.Endpoint, "tracing-endpoint", c.Endpoint, "OTLP/HTTP URL for the otlp exporter (default http://localhost:4318/v1/traces); a file to append JSON spans to for stdout (default standard output)")
	fs.Var((*ratioValue)(&c.SampleRatio), "tracing-sample-ratio", "share of the traces begun here that are recorded, 0 to 1; a request with a traceparent follows its caller")
}

// Validate checks what the flags alone cannot: the endpoint against the
// exporter.
func (c Config) Validate() error {
	if !slices.Contains(Exporters(), c.Exporter) {
		return fmt.Errorf("tracing-exporter (OCIS_TRACING_EXPORTER) %q: want one of %s", c.Exporter, strings.Join(Exporters(), ", "))
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing-sample-ratio (OCIS_TRACING_SAMPLE_RATIO) %v: want a number from 0 to 1", c.SampleRatio)
	}
	if c.Exporter == ExporterOTLP && c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tracing-endpoint (OCIS_TRACING_ENDPOINT) %q: the otlp exporter wants an http:// or https:// URL, such as http://collector:4318/v1/traces", c.Endpoint)
		}
	}
	return nil
}

type exporterValue struct{ p *string }

func (e *exporterValue) String() string {
	if e.p == nil || *e.p == "" {
		return ExporterNone
	}
	return *e.p
}

func (e *exporterValue) Set(v string) error {
	if !slices.Contains(Exporters(), v) {
		return fmt.Errorf("want one of %s", strings.Join(Exporters(), ", "))
	}
	*e.p = v
	return nil
}

type ratioValue float64

func (r *ratioValue) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }

func (r *ratioValue) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("want a number from 0 to 1, such as 0.01")
	}
	*r = ratioValue(f)
	return nil
}
