package config

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AddrVar defines a host:port flag; a value without a numeric port is
// refused when it is set, so a typo never reaches a listener.
func AddrVar(fs *flag.FlagSet, p *string, name, value, usage string) {
	*p = value
	fs.Var((*addrValue)(p), name, usage)
}

type addrValue string

func (a *addrValue) String() string { return string(*a) }

func (a *addrValue) Set(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	*a = addrValue(v)
	return nil
}

// EnumVar defines a flag that takes one of allowed.
func EnumVar(fs *flag.FlagSet, p *string, name, value, usage string, allowed ...string) {
	*p = value
	fs.Var(&enumValue{p: p, allowed: allowed}, name, fmt.Sprintf("%s: %s", usage, strings.Join(allowed, "|")))
}

type enumValue struct {
	p       *string
	allowed []string
}

func (e *enumValue) String() string {
	if e.p == nil {
		return ""
	}
	return *e.p
}

func (e *enumValue) Set(v string) error {
	if !slices.Contains(e.allowed, v) {
		return fmt.Errorf("want one of %s", strings.Join(e.allowed, ", "))
	}
	*e.p = v
	return nil
}

// CheckedVar defines a string flag whose every value must pass check, so a
// value that would fail later (a name a service cannot use) is refused with
// the other invalid settings, before anything starts.
func CheckedVar(fs *flag.FlagSet, p *string, name, value, usage string, check func(string) error) {
	*p = value
	fs.Var(&checkedValue{p: p, check: check}, name, usage)
}

type checkedValue struct {
	p     *string
	check func(string) error
}

func (c *checkedValue) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c *checkedValue) Set(v string) error {
	if err := c.check(v); err != nil {
		return err
	}
	*c.p = v
	return nil
}

// DurationVar defines a duration flag that must be positive.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(v string) error {
	parsed, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration such as 10s or 1m30s")
	}
	if parsed <= 0 {
		return fmt.Errorf("want a positive duration")
	}
	*d = durationValue(parsed)
	return nil
}

// ListVar defines a comma-separated list flag; blanks are dropped.
func ListVar(fs *flag.FlagSet, p *[]string, name, usage string) {
	fs.Var((*listValue)(p), name, usage)
}

type listValue []string

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listValue) Set(v string) error {
	*l = nil
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// PrefixListVar defines a comma-separated list of network prefixes
// ("127.0.0.0/8,::1/128"); a bare address stands for itself alone.
func PrefixListVar(fs *flag.FlagSet, p *[]netip.Prefix, name string, value []netip.Prefix, usage string) {
	*p = value
	fs.Var((*prefixList)(p), name, usage)
}

type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(v string) error {
	var out []netip.Prefix
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil {
				return fmt.Errorf("%q is not an address or a prefix such as 10.0.0.0/8", item)
			}
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%q is not an address or a prefix such as 10.0.0.0/8", item)
		}
		out = append(out, p.Masked())
	}
	*l = out
	return nil
}

// PositiveIntVar defines an integer flag that must be at least 1.
func PositiveIntVar(fs *flag.FlagSet, p *int, name string, value int, usage string) {
	*p = value
	fs.Var((*positiveInt)(p), name, usage)
}

type positiveInt int

func (n *positiveInt) String() string {
	if n == nil {
		return "0"
	}
	return strconv.Itoa(int(*n))
}

func (n *positiveInt) Set(v string) error {
	parsed, err := strconv.Atoi(v)
	if err != nil || parsed < 1 {
		return fmt.Errorf("want a whole number of at least 1")
	}
	*n = positiveInt(parsed)
	return nil
}
