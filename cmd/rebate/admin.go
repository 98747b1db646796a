package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/store"
)

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	pool, err := parseAndOpen(ctx, fs, databaseFlag(fs), args, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stderr, "migrate: schema is up to date")
	}
	for _, v := range applied {
		fmt.Fprintln(stderr, "migrate: applied", v)
	}
	return nil
}

const keysUsage = `usage: rebate keys create --role shop|operator|auditor --name NAME
       rebate keys list
       rebate keys revoke --id ID`

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return keysList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, args[1:], stdout, stderr)
	}
	return errors.New(keysUsage)
}

// keysCreate prints the new key alone on stdout: the only time it is shown.
func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create", stderr)
	dbURL := databaseFlag(fs)
	role := fs.String("role", "", "shop, operator or auditor")
	name := fs.String("name", "", "who the key is for")
	pool, err := parseAndOpen(ctx, fs, dbURL, args, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	key, err := auth.CreateKey(ctx, pool, r, *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}

// keysList prints every key's id, name, role and dates as JSON lines; never the key.
func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys list", stderr)
	pool, err := parseAndOpen(ctx, fs, databaseFlag(fs), args, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	list, err := auth.ListKeys(ctx, pool)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, k := range list {
		if err := enc.Encode(k); err != nil {
			return err
		}
	}
	return nil
}

// keysRevoke revokes one key (and the member tokens it issued) and prints it as JSON.
func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys revoke", stderr)
	dbURL := databaseFlag(fs)
	id := fs.Int64("id", 0, "the key's id (rebate keys list)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("--id is required: the key's id from rebate keys list")
	}
	pool, err := parseAndOpen(ctx, fs, dbURL, fs.Args(), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	k, err := auth.RevokeKey(ctx, pool, *id)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(k)
}

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	dbURL := databaseFlag(fs)
	seal := fs.Bool("seal", true, "seal committed entries first, so the chain covers them")
	full := fs.Bool("full", false, "check the whole journal (every balance, the whole chain); default: what was sealed since the last check")
	file := fs.String("file", "", "verify this JSONL export offline, with no database (see rebate export)")
	manifest := fs.String("manifest", "", "with --file: the export's manifest (default: FILE.manifest.json when it exists)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file != "" {
		return verifyFile(*file, *manifest, stdout)
	}
	pool, err := parseAndOpen(ctx, fs, dbURL, nil, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool)
	if *seal {
		if _, err := l.SealAll(ctx); err != nil {
			return err
		}
	}
	if !*full {
		return verifyIncremental(ctx, pool, stdout)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("verify found %d problems", len(rep.Problems))
	}
	return nil
}

// verifyIncremental runs the continuous checker until it has caught up and prints each run: the
// stretch of the chain checked since the last check and the accounts its entries touched.
func verifyIncremental(ctx context.Context, pool *pgxpool.Pool, stdout io.Writer) error {
	c := audit.NewChecker(pool)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	violations, runs := 0, 0
	for {
		ch, err := c.Run(ctx)
		if err != nil {
			return err
		}
		if ch == nil {
			break
		}
		runs++
		violations += len(ch.Violations)
		if err := enc.Encode(ch); err != nil {
			return err
		}
	}
	if runs == 0 {
		fmt.Fprintln(stdout, `{"status": "ok", "checked": "nothing sealed since the last check (use --full for the whole journal)"}`)
	}
	if violations > 0 {
		return fmt.Errorf("verify found %d violations", violations)
	}
	return nil
}
