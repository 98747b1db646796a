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
		fmt.Fprintln(os.Stderr, "rebate:", err)
		os.Exit(1)
	}
}

// run runs one command line (without the program's name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(ctx, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
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

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
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

// databaseFlag is --database-url. Its default is not shown (a URL may hold a password); an empty
// value falls back to DATABASE_URL when the command checks it (requireDatabase).
func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database-url", "", "PostgreSQL URL (default: env DATABASE_URL)")
}

// parseAndOpen parses a command's flags and connects to the database they name.
func parseAndOpen(ctx context.Context, fs *flag.FlagSet, dbURL *string, args []string, conns int32) (*pgxpool.Pool, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := requireDatabase(dbURL); err != nil {
		return nil, err
	}
	return store.Open(ctx, *dbURL, conns)
}

// requireDatabase fills an empty --database-url from DATABASE_URL and says how to get one when
// neither is set.
func requireDatabase(url *string) error {
	if *url == "" {
		*url = os.Getenv("DATABASE_URL")
	}
	if *url == "" {
		return errors.New("no database: set --database-url or DATABASE_URL; `make -s db` starts the project's private PostgreSQL and prints its URL")
	}
	return nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
