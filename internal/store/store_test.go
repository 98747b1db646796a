package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
)

// TestMigrateConcurrently: two migrators on an empty database apply each migration exactly once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyDatabase(t)
	var wg sync.WaitGroup
	applied := make([][]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			pool, err := store.Open(ctx, url, 4)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = store.Migrate(ctx, pool)
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	ms, err := store.Migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), len(applied[0])+len(applied[1]), "each migration applied by exactly one migrator")

	pool, err := store.Open(ctx, url, 2)
	require.NoError(t, err)
	defer pool.Close()
	pending, err := store.Pending(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, pending)
	again, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, again)

	// An applied migration that was edited afterwards is refused: migrations are forward-only.
	_, err = pool.Exec(ctx, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = $1", ms[0].Version)
	require.NoError(t, err)
	_, err = store.Migrate(ctx, pool)
	require.ErrorContains(t, err, "was changed after it was applied")
}

func TestWithTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	boom := errors.New("boom")
	err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO api_keys (name, role, key_hash) VALUES ('x', 'shop', decode(repeat('00', 32), 'hex'))")
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM api_keys").Scan(&n))
	require.Zero(t, n, "rolled back")

	cancelled, cancel := context.WithCancel(ctx)
	err = store.WithTx(cancelled, pool, func(tx pgx.Tx) error {
		cancel()
		return cancelled.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, pool.QueryRow(ctx, "SELECT 1").Scan(&n), "the pool is still usable")
}
