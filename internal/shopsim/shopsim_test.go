package shopsim_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/shopsim"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

// TestTheSimulatedShopRunsAgainstTheRealService plays a small shop against the real echo server
// with River's workers (the SIMULATED payout provider, the checker, campaign awards), through the
// generated client only, and checks that what it reports is what the journal says.
func TestTheSimulatedShopRunsAgainstTheRealService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	engine := rebate.NewEngine(pool, l)
	sim := simulated.New(200 * time.Millisecond)
	w := wallet.New(pool, l, sim)
	camps := campaign.New(pool, l)
	logger := slog.New(slog.DiscardHandler)
	rc, err := jobs.NewClient(pool, l, engine, jobs.Config{Workers: true, Logger: logger, Wallet: w, Simulated: sim,
		Checker: audit.NewChecker(pool), CheckEvery: 500 * time.Millisecond, SealEvery: 200 * time.Millisecond, Campaigns: camps})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.WithoutCancel(ctx)) })
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Pool: pool, Ledger: l, Engine: engine, Wallet: w, Campaigns: camps, Logger: logger}))
	t.Cleanup(srv.Close)
	key := func(r auth.Role) string {
		k, err := auth.CreateKey(ctx, pool, r, "sim-"+string(r))
		require.NoError(t, err)
		return k
	}

	sum, err := shopsim.Run(ctx, shopsim.Config{URL: srv.URL, ShopKey: key(auth.Shop), OperatorKey: key(auth.Operator),
		AuditorKey: key(auth.Auditor), Members: 120, Days: 3, Seed: 7, CampaignFor: 3 * time.Second, Log: io.Discard})
	require.NoError(t, err)

	require.Equal(t, 120, sum.Members)
	var members, orders, refunds int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM members WHERE id LIKE $1`, sum.RunID+"-%").Scan(&members))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE order_id LIKE $1`, sum.RunID+"-%").Scan(&orders))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM refunds WHERE refund_id LIKE $1`, sum.RunID+"-%").Scan(&refunds))
	require.Equal(t, sum.Members, members)
	require.Equal(t, sum.Orders, orders, "every order applied once, replays included")
	require.Equal(t, sum.Refunds, refunds)
	require.Positive(t, sum.Withdrawals, "some members had money to withdraw")
	var reviewed, rejected int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE reviewed_at IS NOT NULL), count(*) FILTER (WHERE status = 'rejected')
		FROM withdrawals WHERE id LIKE $1`, sum.RunID+"-%").Scan(&reviewed, &rejected))
	require.Equal(t, sum.Approved+sum.Rejected, reviewed, "every withdrawal above the threshold was reviewed")
	require.Equal(t, sum.Rejected, rejected)
	var paid int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM withdrawals WHERE status = 'paid' AND id LIKE $1`, sum.RunID+"-%").Scan(&paid))
	require.Equal(t, sum.Paid, paid)
	require.Positive(t, paid, "the SIMULATED provider paid the batch")
	require.NotEmpty(t, sum.CampaignWinners, "the campaign was awarded")
	require.Equal(t, "ok", sum.CheckerStatus)
	rep, err := l.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.Problems)
}
