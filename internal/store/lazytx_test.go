package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// tracer counts what a pool sends: statements sent alone and batches.
type tracer struct {
	mu      sync.Mutex
	queries []string
	batches int
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.queries = append(tr.queries, d.SQL)
	return ctx
}

func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (tr *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.batches++
	return ctx
}

func (tr *tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (tr *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (tr *tracer) reset() (queries []string, batches int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	queries, batches = tr.queries, tr.batches
	tr.queries, tr.batches = nil, 0
	return queries, batches
}

// tracedPool is a pool on a new database, with a table t(v int) to write to.
func tracedPool(t *testing.T) (*pgxpool.Pool, *tracer) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	tr := &tracer{}
	cfg.ConnConfig.Tracer = tr
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, "CREATE TABLE t (v int NOT NULL CHECK (v > 0))")
	require.NoError(t, err)
	tr.reset()
	return pool, tr
}

func count(t *testing.T, pool *pgxpool.Pool, v int) int {
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM t WHERE v = $1", v).Scan(&n))
	return n
}

// TestWithTxBeginsWithTheFirstStatement: on a pool, a transaction's BEGIN travels with its first
// statement, whatever that statement is, and the statement is inside the transaction (it is undone
// by a rollback and kept by a commit).
func TestWithTxBeginsWithTheFirstStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, tr := tracedPool(t)
	firsts := map[string]func(tx pgx.Tx, v int) error{
		"Exec": func(tx pgx.Tx, v int) error {
			_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", v)
			return err
		},
		"Query": func(tx pgx.Tx, v int) error {
			rows, err := tx.Query(ctx, "INSERT INTO t VALUES ($1) RETURNING v", v)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err == nil && (len(got) != 1 || got[0] != v) {
				err = errors.New("wrong rows")
			}
			return err
		},
		"QueryRow": func(tx pgx.Tx, v int) error {
			var got int
			if err := tx.QueryRow(ctx, "INSERT INTO t VALUES ($1) RETURNING v", v).Scan(&got); err != nil {
				return err
			}
			if got != v {
				return errors.New("wrong row")
			}
			return nil
		},
		"SendBatch": func(tx pgx.Tx, v int) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO t VALUES ($1)", v)
			b.Queue("INSERT INTO t VALUES ($1)", v)
			return tx.SendBatch(ctx, b).Close()
		},
	}
	v := 0
	for name, first := range firsts {
		t.Run(name, func(t *testing.T) {
			v++
			errUndo := errors.New("undo")
			err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
				if err := first(tx, v); err != nil {
					return err
				}
				// The connection is free for the next statement once the first is read.
				var n int
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM t WHERE v = $1", v).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					return errors.New("the transaction does not see its own row")
				}
				return errUndo
			})
			require.ErrorIs(t, err, errUndo)
			require.Zero(t, count(t, pool, v), "rolled back with the transaction")
			queries, batches := tr.reset()
			require.Equal(t, 1, batches, "BEGIN went with the first statement")
			require.Equal(t, []string{"SELECT count(*) FROM t WHERE v = $1", "rollback"}, queries[:2])

			require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error { return first(tx, v) }))
			require.NotZero(t, count(t, pool, v), "committed")
			queries, batches = tr.reset()
			require.Equal(t, 1, batches)
			require.Equal(t, "commit", queries[0], "then only COMMIT")
		})
	}
}

func TestWithTxLazyEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, tr := tracedPool(t)

	t.Run("NothingSentWhenNothingRan", func(t *testing.T) {
		require.NoError(t, store.WithTx(ctx, pool, func(pgx.Tx) error { return nil }))
		require.Error(t, store.WithTx(ctx, pool, func(pgx.Tx) error { return errors.New("no") }))
		queries, batches := tr.reset()
		require.Empty(t, queries)
		require.Zero(t, batches)
	})

	t.Run("AFailedFirstStatementAbortsTheTransaction", func(t *testing.T) {
		// The caller ignores the error: COMMIT then reports that the server rolled back.
		err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, "INSERT INTO t VALUES ($1)", -1)
			_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 1000)
			require.Error(t, err, "the transaction is aborted")
			return nil
		})
		require.ErrorIs(t, err, pgx.ErrTxCommitRollback)
		require.Zero(t, count(t, pool, 1000))
		// The connection went back to the pool usable.
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 1001)
			return err
		}))
		require.Equal(t, 1, count(t, pool, 1001))
	})

	t.Run("AStatementWithoutParametersMayHoldSeveral", func(t *testing.T) {
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO t VALUES (2000); INSERT INTO t VALUES (2000)")
			return err
		}))
		require.Equal(t, 2, count(t, pool, 2000))
	})

	t.Run("Savepoints", func(t *testing.T) {
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, "INSERT INTO t VALUES ($1)", 3000); err != nil {
				return err
			}
			if err := sp.Rollback(ctx); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 3001)
			return err
		}))
		require.Zero(t, count(t, pool, 3000), "rolled back to the savepoint")
		require.Equal(t, 1, count(t, pool, 3001), "the rest committed")
	})

	t.Run("ClosedIsClosed", func(t *testing.T) {
		var kept pgx.Tx
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error { kept = tx; return nil }))
		require.ErrorIs(t, kept.Commit(ctx), pgx.ErrTxClosed)
		_, err := kept.Exec(ctx, "INSERT INTO t VALUES ($1)", 4000)
		require.ErrorIs(t, err, pgx.ErrTxClosed)
		require.ErrorIs(t, kept.SendBatch(ctx, &pgx.Batch{}).Close(), pgx.ErrTxClosed)
	})
}

func programCount(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	var n int
	require.NoError(t, q.QueryRow(context.Background(), "SELECT count(*) FROM programs").Scan(&n))
	return n
}

// TestSendAhead: queued generated queries go to the server with the transaction's next statement,
// in the same round trip and before it; their results are read, and their errors reported.
func TestSendAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, tr := tracedPool(t)
	programs := programCount(t, pool)
	insert := func(rules string, out *sqlc.Program) func(q *store.Queries) error {
		return func(q *store.Queries) (err error) {
			*out, err = q.ProgramInsert(ctx, sqlc.ProgramInsertParams{Rules: []byte(rules)})
			return err
		}
	}
	tr.reset()

	t.Run("WithTheNextStatement", func(t *testing.T) {
		var p1, p2 sqlc.Program
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			done := store.SendAhead(ctx, tx, insert(`{"a": 1}`, &p1), insert(`{"a": 2}`, &p2))
			seen := programCount(t, tx)
			require.NoError(t, done())
			require.Equal(t, programs+2, seen, "the next statement ran after them")
			require.Equal(t, p1.Version+1, p2.Version, "each step read its own result")
			return nil
		}))
		queries, batches := tr.reset()
		require.Equal(t, 1, batches, "BEGIN, both inserts and the count in one round trip")
		require.Equal(t, "commit", queries[0])
		require.Equal(t, programs+2, programCount(t, pool))
		programs += 2
	})

	t.Run("AloneWhenNothingFollows", func(t *testing.T) {
		var p sqlc.Program
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			done := store.SendAhead(ctx, tx, insert(`{"b": 1}`, &p))
			if err := done(); err != nil {
				return err
			}
			require.NotZero(t, p.Version, "read by done")
			return nil
		}))
		require.Equal(t, programs+1, programCount(t, pool))
		programs++
	})

	t.Run("CommitSendsThem", func(t *testing.T) {
		var p sqlc.Program
		require.NoError(t, store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			store.SendAhead(ctx, tx, insert(`{"c": 1}`, &p))
			return nil
		}))
		require.NotZero(t, p.Version)
		require.Equal(t, programs+1, programCount(t, pool))
		programs++
	})

	t.Run("TheirErrorIsReportedAndNothingStays", func(t *testing.T) {
		var p sqlc.Program
		err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			done := store.SendAhead(ctx, tx, insert(`{"d": 1}`, &p), insert(`[1]`, &p))
			_, nextErr := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 5000)
			require.Error(t, nextErr, "the statement sent with them fails too")
			return done()
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "23514", pgErr.Code, "rules must be an object")
		require.Equal(t, programs, programCount(t, pool))
		require.Zero(t, count(t, pool, 5000))

		err = store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			store.SendAhead(ctx, tx, insert(`[1]`, &p))
			return nil
		})
		require.ErrorAs(t, err, &pgErr, "or by the commit when nobody asked")
		require.Equal(t, programs, programCount(t, pool))
	})

	t.Run("RollbackDropsThem", func(t *testing.T) {
		var done func() error
		errNo := errors.New("no")
		err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			var p sqlc.Program
			done = store.SendAhead(ctx, tx, insert(`{"e": 1}`, &p))
			return errNo
		})
		require.ErrorIs(t, err, errNo)
		require.Error(t, done())
		require.Equal(t, programs, programCount(t, pool))
	})

	t.Run("AtOnceOnAnotherTransaction", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		var p sqlc.Program
		done := store.SendAhead(ctx, tx, insert(`{"f": 1}`, &p))
		require.NotZero(t, p.Version, "ran before SendAhead returned")
		require.NoError(t, done())
	})
}
