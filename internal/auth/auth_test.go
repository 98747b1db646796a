package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/pgtest"
)

// TestKeyCache: a found key is trusted for the cache's ttl and looked up again after it; a revoked
// key stops working once its cached entry is older than the ttl; unknown keys are never cached.
func TestKeyCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	key, err := auth.CreateKey(ctx, pool, auth.Shop, "cached")
	require.NoError(t, err)
	c := auth.NewKeyCache(300 * time.Millisecond)

	p, err := c.Lookup(ctx, pool, key)
	require.NoError(t, err)
	require.Equal(t, auth.Shop, p.Role)

	_, err = pool.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE name = 'cached'")
	require.NoError(t, err)
	_, err = auth.Lookup(ctx, pool, key)
	require.ErrorIs(t, err, auth.ErrUnknownKey, "the database refuses it at once")
	p, err = c.Lookup(ctx, pool, key)
	require.NoError(t, err, "the cache trusts it until its entry is ttl old")
	require.Equal(t, auth.Shop, p.Role)

	require.Eventually(t, func() bool {
		_, err := c.Lookup(ctx, pool, key)
		return err == auth.ErrUnknownKey
	}, 5*time.Second, 50*time.Millisecond)

	_, err = c.Lookup(ctx, pool, "rk_nosuchkey")
	require.ErrorIs(t, err, auth.ErrUnknownKey)
	other, err := auth.CreateKey(ctx, pool, auth.Auditor, "late")
	require.NoError(t, err)
	p, err = c.Lookup(ctx, pool, other)
	require.NoError(t, err)
	require.Equal(t, auth.Auditor, p.Role)

	off := auth.NewKeyCache(0)
	_, err = off.Lookup(ctx, pool, key)
	require.ErrorIs(t, err, auth.ErrUnknownKey, "ttl 0 looks every key up")
}
