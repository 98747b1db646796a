// Command rebate is the rebate ledger's one binary: serve, migrate, keys, verify, bench.
// It only wires things together; the work is in internal/.
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
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/store"
)

const usage = `rebate: the rebate ledger service

Usage:
  rebate serve   [flags]   run the HTTP API and the background workers
  rebate migrate [flags]   apply database migrations (ours and River's)
  rebate keys create --role shop|operator|auditor --name NAME
                           create an API key and print it (once) on stdout
  rebate verify  [flags]   recompute balances and the seal chain; exit 1 on any difference
  rebate bench ledger [flags]
                           measure journal throughput beside pgbench's ceiling

Every command takes --database-url (or DATABASE_URL). Run "rebate COMMAND --help" for its flags.
`

func main() {
	// The service allocates short-lived request and row objects at a high rate on a small machine;
	// collecting at 4x the live heap instead of 2x halves the GC's CPU for a few MB more memory
	// (docs/benchmarks.md). GOGC still wins when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rebate:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], stderr)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr)
	case "verify":
		return verify(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// envOr is a flag default taken from the environment.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// newFlags makes a flag set that prints its usage to stderr and fails with an error, not an exit.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rebate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database-url", envOr("DATABASE_URL", ""), "PostgreSQL URL (env DATABASE_URL)")
}

// parseAndOpen parses a command's flags and connects to the database they name.
func parseAndOpen(ctx context.Context, fs *flag.FlagSet, dbURL *string, args []string, conns int32) (*pgxpool.Pool, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := requireDatabase(*dbURL); err != nil {
		return nil, err
	}
	return store.Open(ctx, *dbURL, conns)
}

func requireDatabase(url string) error {
	if url == "" {
		return errors.New("no database: set --database-url or DATABASE_URL (make run and make test start a local one)")
	}
	return nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
