package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// TestPipelined: generated queries run in one round trip, in order, each seeing the ones before,
// and each step reads its own result.
func TestPipelined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
		var before, after []sqlc.Program
		var inserted sqlc.Program
		err := store.Pipelined(ctx, tx,
			func(q *store.Queries) (err error) { before, err = q.ProgramList(ctx); return err },
			func(q *store.Queries) (err error) {
				inserted, err = q.ProgramInsert(ctx, sqlc.ProgramInsertParams{Rules: []byte(`{"x": 1}`)})
				return err
			},
			func(q *store.Queries) (err error) { after, err = q.ProgramList(ctx); return err })
		require.NoError(t, err)
		require.Len(t, after, len(before)+1)
		require.Equal(t, inserted.Version, after[0].Version, "the third statement saw the second's row")
		return nil
	})
	require.NoError(t, err)

	t.Run("AFailingStepIsReported", func(t *testing.T) {
		err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			return store.Pipelined(ctx, tx,
				func(q *store.Queries) error { _, err := q.ProgramList(ctx); return err },
				func(q *store.Queries) error {
					return q.EventInsertMany(ctx, sqlc.EventInsertManyParams{Ids: []string{""}, Types: []string{"x"}, RequestHashes: [][]byte{{1}}, Responses: [][]byte{[]byte(`{}`)}})
				})
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "23514", pgErr.Code, "the empty event id breaks a CHECK")
	})

	t.Run("AStepMustSendExactlyOneStatement", func(t *testing.T) {
		err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
			return store.Pipelined(ctx, tx, func(q *store.Queries) error {
				_, _ = q.ProgramList(ctx)
				_, err := q.ProgramList(ctx)
				return err
			})
		})
		require.ErrorContains(t, err, "sent 2 statements")
	})
}

// TestPipeline: :exec queries queue and run at Send; reads are refused.
func TestPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		q := p.Queries()
		require.NoError(t, q.EventInsertMany(ctx, sqlc.EventInsertManyParams{Ids: []string{"a", "b"}, Types: []string{"t", "t"},
			RequestHashes: [][]byte{{1}, {2}}, Responses: [][]byte{[]byte(`{}`), []byte(`{}`)}}))
		var n int
		require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n))
		require.Zero(t, n, "nothing runs before Send")
		require.NoError(t, p.Send(ctx))
		require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n))
		require.Equal(t, 2, n)
		_, err := q.ProgramList(ctx)
		require.Error(t, err, "a query that returns rows cannot be queued")
		return nil
	})
	require.NoError(t, err)
}
