package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/store"
)

const clientsUsage = `Usage:
  socialhub clients create -name NAME -kind KIND [-scopes a,b] [-purposes x,y] [-rate N] [-burst N]
  socialhub clients list [-json]
  socialhub clients revoke ID

Manages API clients directly in the database (no running hub needed). The token is printed once,
on create, and is not kept: only its SHA-256 is stored.
`

// openStore opens the database for an operator command and applies the migration sets it needs.
func openStore(ctx context.Context, c commonFlags, getenv func(string) string, sets ...store.MigrationSet) (*pgxpool.Pool, func(), error) {
	cfg, err := c.load(getenv)
	if err != nil {
		return nil, nil, err
	}
	url, stop, err := database(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	pool, err := store.Open(ctx, url)
	if err != nil {
		stop()
		return nil, nil, err
	}
	if err := store.Migrate(ctx, pool, sets...); err != nil {
		pool.Close()
		stop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); stop() }, nil
}

func cmdClients(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, clientsUsage)
		if len(args) == 0 {
			return usageError{"clients: a command is required"}
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("socialhub clients "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientsUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var c commonFlags
	c.register(fs)
	switch sub {
	case "create":
		name := fs.String("name", "", "the client's name, e.g. «УСЗН ЮВАО»")
		kind := fs.String("kind", "", "department, ngo, app, operator or admin")
		scopes := fs.String("scopes", "", "comma-separated scopes: "+strings.Join(clients.Scopes(), ", "))
		purposes := fs.String("purposes", "", "comma-separated purpose codes the client may declare, e.g. subsidy,social_service")
		rate := fs.Float64("rate", clients.DefaultRate, "requests per second")
		burst := fs.Int("burst", clients.DefaultBurst, "burst of requests")
		if err := parse(fs, args); err != nil {
			return err
		}
		pool, closeFn, err := openStore(ctx, c, getenv, clients.Migrations())
		if err != nil {
			return err
		}
		defer closeFn()
		cl, token, err := clients.NewStore(pool).Create(ctx, clients.NewClient{Name: *name, Kind: clients.Kind(*kind),
			Scopes: splitList(*scopes), Purposes: splitList(*purposes), Rate: *rate, Burst: *burst})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s created (%s, %s)\nscopes:   %s\npurposes: %s\ntoken (shown once, keep it secret):\n%s\n",
			cl.ID, cl.Name, cl.Kind, strings.Join(cl.Scopes, ", "), strings.Join(cl.Purposes, ", "), token)
		return nil
	case "list":
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if err := parse(fs, args); err != nil {
			return err
		}
		pool, closeFn, err := openStore(ctx, c, getenv, clients.Migrations())
		if err != nil {
			return err
		}
		defer closeFn()
		list, err := clients.NewStore(pool).List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKIND\tSCOPES\tPURPOSES\tRATE\tSTATE")
		for _, cl := range list {
			state := "active"
			if cl.RevokedAt != nil {
				state = "revoked " + cl.RevokedAt.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%g/s\t%s\n", cl.ID, cl.Name, cl.Kind, strings.Join(cl.Scopes, ","),
				strings.Join(cl.Purposes, ","), cl.Rate, state)
		}
		return tw.Flush()
	case "revoke":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageError{"clients revoke: give exactly one client id"}
		}
		pool, closeFn, err := openStore(ctx, c, getenv, clients.Migrations())
		if err != nil {
			return err
		}
		defer closeFn()
		cl, err := clients.NewStore(pool).Revoke(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s (%s) revoked\n", cl.ID, cl.Name)
		return nil
	default:
		fmt.Fprint(stderr, clientsUsage)
		return usageError{fmt.Sprintf("unknown clients command %q", sub)}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

const auditUsage = `Usage:
  socialhub audit verify

Checks the audit log's hash chain from the first row to the head and names the first broken row.
Exits non-zero when the chain is broken.
`

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return usageError{"audit: the command is verify"}
	}
	fs := flag.NewFlagSet("socialhub audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var c commonFlags
	c.register(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	pool, closeFn, err := openStore(ctx, c, getenv, audit.Migrations())
	if err != nil {
		return err
	}
	defer closeFn()
	head, err := audit.New(pool).Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d rows, head %d %s\n", head.Rows, head.Seq, head.Hash)
	return nil
}
