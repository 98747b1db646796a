package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/rebate-ledger/rebate/db"
)

// migrationLockID is the advisory lock that serialises migrators, so two processes starting at once
// apply each migration exactly once.
const migrationLockID = 7_234_001

// Migration is one forward-only SQL file.
type Migration struct {
	Version string // file name without .sql, e.g. "0001_ledger"
	SQL     string
}

// Migrations lists the embedded migrations in order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(db.Migrations, n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: strings.TrimSuffix(strings.TrimPrefix(n, "migrations/"), ".sql"), SQL: string(b)})
	}
	return out, nil
}

// SchemaHash identifies the schema: our migrations and River's, so a template database built for
// one schema is never reused for another.
func SchemaHash() (string, error) {
	ms, err := Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%s\n%s\n", m.Version, m.SQL)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", err
	}
	for _, m := range migrator.AllVersions() {
		fmt.Fprintf(h, "river:%d\n", m.Version)
	}
	// The grants Migrate applies are part of the schema too.
	for _, g := range append(serviceGrants, riverGrants) {
		fmt.Fprintf(h, "grant:%s\n", g)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Migrate applies River's migrations and then ours that are not applied yet, each in its own
// transaction, recorded in schema_migrations. It holds an advisory lock meanwhile, so concurrent
// migrators wait for each other instead of racing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockID) //nolint:errcheck

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m.SQL))
		checksum := hex.EncodeToString(sum[:])
		var have string
		err := conn.QueryRow(ctx, "SELECT checksum FROM schema_migrations WHERE version = $1", m.Version).Scan(&have)
		if err == nil {
			if have != checksum {
				return applied, fmt.Errorf("migration %s was changed after it was applied (forward-only: add a new migration)", m.Version)
			}
			continue
		}
		if err != pgx.ErrNoRows {
			return applied, err
		}
		err = WithTx(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Version, err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", m.Version, checksum)
			return err
		})
		if err != nil {
			return applied, err
		}
		applied = append(applied, m.Version)
	}
	if _, err := GrantServiceRole(ctx, conn); err != nil {
		return applied, err
	}
	return applied, nil
}

// Pending lists migrations not applied yet (for /readyz).
func Pending(ctx context.Context, q DBTX) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, v := range have {
		seen[v] = true
	}
	var pending []string
	for _, m := range ms {
		if !seen[m.Version] {
			pending = append(pending, m.Version)
		}
	}
	return pending, nil
}
