// Command socialhub runs the hub and its operator commands. It reads the configuration, wires the
// parts together and forwards signals; everything else lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "socialhub:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "socialhub:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `socialhub — the data hub of the city's social services

Usage:
  socialhub run [flags]        run everything in one process on embedded defaults
  socialhub serve --roles=...  run some roles against external Kafka and PostgreSQL (scale out)
  socialhub migrate [flags]    apply the database migrations and exit
  socialhub demo [flags]       write the demo department file (CSV) to stdout or a file
  socialhub demo generate      write every demo source's data into a directory (see -h)
  socialhub sources [list|run] list the sources and their runs; run one now (see -h)
  socialhub bench [flags]      end-to-end benchmark on a throwaway PostgreSQL and embedded broker (see -h)
  socialhub doctor [--json]    check Kafka, PostgreSQL, topics, migrations, secrets; say what to fix
  socialhub review list|show|merge|split|dismiss  the entity-resolution review queue
  socialhub dlq list|show|replay  dead letters: filter, inspect, replay (talks to the running hub)
  socialhub clients create|list|revoke  API clients, their scopes and purposes
  socialhub audit verify       check the audit log's hash chain, naming the first broken row
  socialhub verify TOKEN       verify an attestation offline against the hub's JWKS
  socialhub version            print the version

Run 'socialhub <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run", "serve", "bench":
		tuneGC(getenv)
	}
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr, getenv)
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr, getenv)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr, getenv)
	case "doctor":
		return cmdDoctor(ctx, rest, stdout, stderr, getenv)
	case "review":
		return cmdReview(ctx, rest, stdout, stderr, getenv)
	case "dlq":
		return cmdDLQ(ctx, rest, stdout, stderr, getenv)
	case "clients":
		return cmdClients(ctx, rest, stdout, stderr, getenv)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr, getenv)
	case "verify":
		return cmdVerify(ctx, rest, stdout, stderr, getenv)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr, getenv)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "sources":
		return cmdSources(ctx, rest, stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "socialhub", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	ho := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// gcPercent is the collector's target for the processes that move records (run, serve, bench).
// The stages allocate per record, and at Go's default of 100 the collector took about 15% of the
// CPU on two cores; 400 trades a few hundred MiB of heap for that CPU (make bench shows the peak
// RSS). GOGC in the environment wins; GOMEMLIMIT caps the heap where memory is tight.
const gcPercent = 400

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
