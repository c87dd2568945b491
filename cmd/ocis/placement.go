package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ocis-runtime/ocis/pkg/config"
	"github.com/ocis-runtime/ocis/pkg/natsconn"
	"github.com/ocis-runtime/ocis/pkg/placement"
	"github.com/ocis-runtime/ocis/pkg/registry"
	"github.com/ocis-runtime/ocis/pkg/service"
	natsservice "github.com/ocis-runtime/ocis/services/nats"
)

// placementTimeout bounds a placement command, reaching NATS included.
const placementTimeout = 10 * time.Second

// accountID is what an account id looks like (32 hex digits): an argument
// of that shape that names no placement is taken as an id, not a name.
var accountID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// placementSettings is what a placement command reads: the shared
// settings (where ocis.env is) and how to reach NATS.
type placementSettings struct {
	set    *config.Set
	shared *service.Shared
	nats   natsconn.Options
	json   bool
	cat    service.Catalogue
}

func newPlacementSettings(cat service.Catalogue, name string, usage io.Writer, withJSON bool) *placementSettings {
	s := &placementSettings{set: config.NewSet(name, usage), shared: service.NewShared(), cat: cat}
	s.set.Register("", "", s.shared.RegisterFlags)
	s.set.Register("", "", s.nats.RegisterFlags)
	if withJSON {
		s.set.FlagSet().BoolVar(&s.json, "json", false, "print JSON for machines")
	}
	return s
}

// withStore runs fn on the placement bucket, the whole command, reaching
// NATS included, bounded by placementTimeout.
func (s *placementSettings) withStore(ctx context.Context, fn func(context.Context, *placement.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, placementTimeout)
	defer cancel()
	st, closeConn, err := s.store(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return fn(ctx, st)
}

// store connects to NATS and opens the placement bucket. Without
// OCIS_NATS_URL it dials this node's nats service at its configured
// address.
func (s *placementSettings) store(ctx context.Context) (*placement.Store, func(), error) {
	if err := s.set.Load(func() (string, error) { return s.shared.ConfigPath(), nil }); err != nil {
		return nil, nil, err
	}
	opts := s.nats
	if len(opts.URLs) == 0 {
		addr, err := s.localNATS()
		if err != nil {
			return nil, nil, err
		}
		opts.URLs = []string{addr}
	}
	opts.Name = "ocis storage placement"
	nc, err := natsconn.Connect(opts)
	if err != nil {
		return nil, nil, err
	}
	st, err := placement.OpenStore(ctx, nc, placement.StoreConfig{})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("reach NATS at %s (OCIS_NATS_URL, OCIS_NATS_USER/PASSWORD): %w", strings.Join(opts.URLs, ","), err)
	}
	return st, nc.Close, nil
}

// localNATS is the client address of this node's nats service, as its
// settings say.
func (s *placementSettings) localNATS() (string, error) {
	d, ok := s.cat.Lookup(natsservice.Name)
	if !ok {
		return "", errors.New("no nats service in this binary: set OCIS_NATS_URL")
	}
	cfg := d.NewConfig()
	set := config.NewSet(d.Name, io.Discard)
	set.Register("", d.Name, cfg.RegisterFlags)
	if err := set.Load(func() (string, error) { return s.shared.ConfigPath(), nil }); err != nil {
		return "", err
	}
	return service.Dialable(cfg.Base().HTTPAddr), nil
}

// placementCommand returns `ocis storage placement`.
func placementCommand(a *app) *ffcli.Command {
	return &ffcli.Command{
		Name:       "placement",
		ShortUsage: "ocis storage placement list|show|set [flags]",
		ShortHelp:  "see and change on which node each user's files live",
		LongHelp: "Each user's files live on one storage node, chosen at the user's first write and recorded in\n" +
			"the NATS bucket ocis-placement. `set` moves a user: copy files/<id> to the new node's data dir\n" +
			"first (docs/distribution.md, \"Moving a user\").",
		FlagSet: a.flagSet("placement"),
		Subcommands: []*ffcli.Command{
			placementListCommand(a), placementShowCommand(a), placementSetCommand(a),
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return &usageError{fmt.Sprintf("unknown command %q for storage placement; use list, show or set", args[0])}
		},
	}
}

func placementListCommand(a *app) *ffcli.Command {
	s := newPlacementSettings(a.cat, "list", a.usage, true)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "ocis storage placement list [--json]",
		ShortHelp:  "every placed user: account id, username, node, since, by whom",
		FlagSet:    s.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs("list", args); err != nil {
				return err
			}
			return s.withStore(ctx, func(ctx context.Context, st *placement.Store) error {
				all, err := st.List(ctx)
				if err != nil {
					return err
				}
				return printPlacements(a.stdout, all, s.json)
			})
		},
	}
}

func placementShowCommand(a *app) *ffcli.Command {
	s := newPlacementSettings(a.cat, "show", a.usage, true)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "ocis storage placement show [--json] <username-or-account-id>",
		ShortHelp:  "the node holding one user's files; exit 1 when the user is placed nowhere yet",
		FlagSet:    s.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return &usageError{"show takes one username or account id"}
			}
			return s.withStore(ctx, func(ctx context.Context, st *placement.Store) error {
				id, rec, found, err := findPlacement(ctx, st, args[0])
				if err != nil {
					return err
				}
				if !found {
					return fmt.Errorf("%s is placed on no node yet: the user's first write places them", args[0])
				}
				return printPlacements(a.stdout, map[string]placement.Record{id: rec}, s.json)
			})
		},
	}
}

func placementSetCommand(a *app) *ffcli.Command {
	s := newPlacementSettings(a.cat, "set", a.usage, false)
	return &ffcli.Command{
		Name:       "set",
		ShortUsage: "ocis storage placement set <username-or-account-id> <node>",
		ShortHelp:  "place a user on node (a move: copy files/<id> there first)",
		FlagSet:    s.set.FlagSet(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return &usageError{"set takes a username or account id and a node name"}
			}
			node := args[1]
			if err := registry.ValidateNodeName(node); err != nil {
				return err
			}
			return s.withStore(ctx, func(ctx context.Context, st *placement.Store) error {
				id, old, found, err := findPlacement(ctx, st, args[0])
				if err != nil {
					return err
				}
				if !found && !accountID.MatchString(args[0]) {
					return fmt.Errorf("no placement names user %q: give the account id (the directory name under the storage data dir's files/)", args[0])
				}
				rec := placement.Record{Node: node, Username: old.Username, At: time.Now().UTC(), By: "operator"}
				if err := st.Set(ctx, id, rec); err != nil {
					return err
				}
				if found {
					fmt.Fprintf(a.stdout, "user %s (%s) moved from node %s to node %s\n", id, old.Username, old.Node, node)
				} else {
					fmt.Fprintf(a.stdout, "user %s placed on node %s\n", id, node)
				}
				return nil
			})
		},
	}
}

// findPlacement resolves who: an account id with a placement, else the
// username recorded with one, else an account id placed nowhere yet.
func findPlacement(ctx context.Context, st *placement.Store, who string) (id string, rec placement.Record, found bool, err error) {
	if placement.ValidateUser(who) == nil {
		rec, found, err := st.Get(ctx, who)
		if err != nil || found {
			return who, rec, found, err
		}
	}
	all, err := st.List(ctx)
	if err != nil {
		return "", placement.Record{}, false, err
	}
	var ids []string
	for id, rec := range all {
		if rec.Username == who {
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return who, placement.Record{}, false, nil
	case 1:
		return ids[0], all[ids[0]], true, nil
	}
	sort.Strings(ids)
	return "", placement.Record{}, false, fmt.Errorf("username %q was recorded for several accounts (%s): give the account id", who, strings.Join(ids, ", "))
}

// printPlacements writes placements as a table or as JSON objects.
func printPlacements(w io.Writer, all map[string]placement.Record, asJSON bool) error {
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if asJSON {
		type row struct {
			ID string `json:"id"`
			placement.Record
		}
		rows := make([]row, 0, len(ids))
		for _, id := range ids {
			rows = append(rows, row{ID: id, Record: all[id]})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tUSERNAME\tNODE\tSINCE\tBY")
	for _, id := range ids {
		r := all[id]
		since := "-"
		if !r.At.IsZero() {
			since = r.At.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, dash(r.Username), r.Node, since, dash(r.By))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
