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

// TestRevokeKey: a revoked key and the member tokens it issued stop working; tokens of other keys
// go on; revoking again keeps the first time; an unknown id is an error and changes nothing.
func TestRevokeKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	_, err := pool.Exec(ctx, "INSERT INTO members (id, referral_code, request_hash) VALUES ('m1', 'ABCDEF', decode(repeat('00', 32), 'hex'))")
	require.NoError(t, err)
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "shop")
	require.NoError(t, err)
	other, err := auth.CreateKey(ctx, pool, auth.Shop, "other")
	require.NoError(t, err)
	shopP, err := auth.Lookup(ctx, pool, shop)
	require.NoError(t, err)
	otherP, err := auth.Lookup(ctx, pool, other)
	require.NoError(t, err)
	token, _, err := auth.CreateMemberToken(ctx, pool, shopP, "m1", time.Hour)
	require.NoError(t, err)
	otherToken, _, err := auth.CreateMemberToken(ctx, pool, otherP, "m1", time.Hour)
	require.NoError(t, err)
	_, err = auth.Lookup(ctx, pool, token)
	require.NoError(t, err)

	k, err := auth.RevokeKey(ctx, pool, shopP.KeyID)
	require.NoError(t, err)
	require.Equal(t, "shop", k.Name)
	require.NotNil(t, k.RevokedAt)
	for _, s := range []string{shop, token} {
		_, err = auth.Lookup(ctx, pool, s)
		require.ErrorIs(t, err, auth.ErrUnknownKey)
	}
	for _, s := range []string{other, otherToken} {
		_, err = auth.Lookup(ctx, pool, s)
		require.NoError(t, err, "other keys and their tokens are untouched")
	}

	again, err := auth.RevokeKey(ctx, pool, shopP.KeyID)
	require.NoError(t, err)
	require.Equal(t, *k.RevokedAt, *again.RevokedAt)

	_, err = auth.RevokeKey(ctx, pool, 999999)
	require.ErrorIs(t, err, auth.ErrNoSuchKey)
	list, err := auth.ListKeys(ctx, pool)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, []string{"shop", "other"}, []string{list[0].Name, list[1].Name})
	require.NotNil(t, list[0].RevokedAt)
	require.Nil(t, list[1].RevokedAt)
}
