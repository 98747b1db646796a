// Package store owns the database: the connection pool, the transaction helper, migrations, and the
// sqlc-generated queries. Generated types do not leave the packages that call them through Queries;
// constraint names become the sentinel errors below in one place (InterpretError).
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Queries are the generated queries; New binds them to a pool or a transaction.
type Queries = sqlc.Queries

// DBTX is what generated queries run on: a pool, a connection or a transaction.
type DBTX = sqlc.DBTX

// New binds the generated queries to db.
func New(db DBTX) *Queries { return sqlc.New(db) }

// Open connects a pool whose every connection reads and writes numeric as decimal.Decimal.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		registerDecimal(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// Beginner starts transactions: a pool, or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// WithTx runs fn in a transaction and commits it, or rolls back if fn fails. The rollback uses a
// context that survives the caller's cancellation, so a cancelled request never leaves a
// transaction open on a pooled connection. On a pool, the transaction's BEGIN goes with its first
// statement (lazyTx).
func WithTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	if pool, ok := db.(*pgxpool.Pool); ok {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer conn.Release()
		return run(ctx, &lazyTx{conn: conn.Conn()}, fn)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return run(ctx, tx, fn)
}

// run runs fn in tx, then commits, or rolls back if anything failed.
func run(ctx context.Context, tx pgx.Tx, fn func(tx pgx.Tx) error) error {
	defer func() {
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rbCtx)
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return InterpretError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// Sentinel errors that the database's constraints produce.
var (
	// ErrUnbalanced: an entry's debits and credits differ, or it has fewer than two postings.
	ErrUnbalanced = errors.New("entry does not balance")
	// ErrNegativeBalance: a balance that may not go below zero would have.
	ErrNegativeBalance = errors.New("balance would go below zero")
	// ErrAppendOnly: an attempt to change or delete journal rows.
	ErrAppendOnly = errors.New("journal is append-only")
	// ErrRetryable: a deadlock or serialization failure; the whole transaction may be retried.
	ErrRetryable = errors.New("transaction conflict, retry")
	// ErrInvalidAmount: an amount is zero, negative or has more decimals than its currency.
	ErrInvalidAmount = errors.New("invalid amount")
)

// InterpretError maps PostgreSQL errors to the sentinels above (wrapped, so the original message
// stays for logs); other errors are returned as they are.
func InterpretError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == "40P01" || pgErr.Code == "40001":
		return fmt.Errorf("%w: %w", ErrRetryable, err)
	case pgErr.Code == "23505" && pgErr.ConstraintName == "idempotency_keys_pkey":
		// A request id recorded by a concurrent transaction since this one looked: running the
		// transaction again finds it (idem.DoManyAfterLock).
		return fmt.Errorf("%w: %w", ErrRetryable, err)
	case pgErr.ConstraintName == "entry_balanced" || pgErr.ConstraintName == "postings_same_transaction":
		return fmt.Errorf("%w: %w", ErrUnbalanced, err)
	case pgErr.ConstraintName == "account_balances_non_negative":
		return fmt.Errorf("%w: %w", ErrNegativeBalance, err)
	case pgErr.ConstraintName == "postings_amount_positive" || pgErr.ConstraintName == "postings_amount_scale":
		return fmt.Errorf("%w: %w", ErrInvalidAmount, err)
	case pgErr.Code == "42501" && pgErr.Hint != "":
		return fmt.Errorf("%w: %w", ErrAppendOnly, err)
	}
	return err
}

// IsRetryable reports whether err is a deadlock or serialization failure.
func IsRetryable(err error) bool {
	return errors.Is(InterpretError(err), ErrRetryable)
}

// IsUnavailable reports whether err means the database could not be reached or went away (a
// connection that failed or broke, SQLSTATE classes 08 and 57P: shutting down, crashed, cannot
// connect now): the request did not run, or its transaction rolled back, so the client may retry
// it later. Everything this service writes is idempotent by the client's id, so such a retry is safe.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || pgconn.SafeToRetry(err)
}

// IsUniqueViolation reports whether err is a unique-key violation (SQLSTATE 23505): a row with the
// same key exists, written by another request.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
