package jobs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

// TestSealJobRunsInRiver: the periodic seal job, run by a real River client, seals what is posted.
func TestSealJobRunsInRiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	rc, err := jobs.NewClient(pool, l, rebate.NewEngine(pool, l), jobs.Config{Workers: true, SealEvery: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	for i, member := range []string{"a", "b", "c"} {
		amt := money.MustParse("1.00", money.CNY)
		_, err := l.PostTx(ctx, ledger.EntryRequest{Key: "k" + member, Kind: "accrual", OccurredAt: time.Now(),
			Postings: []ledger.PostingRequest{
				{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: amt},
				{Account: ledger.MemberAccount(member, "held"), Side: ledger.Credit, Amount: amt},
			}})
		require.NoError(t, err, i)
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM entry_seals").Scan(&n))
		return n == 3
	}, 20*time.Second, 50*time.Millisecond)

	require.Eventually(t, func() bool {
		var completed int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'ledger.seal' AND state = 'completed'").Scan(&completed))
		return completed > 0
	}, 20*time.Second, 50*time.Millisecond, "River records completed seal jobs")
	rep, err := l.Verify(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, 3, rep.SealsChecked)
}

// TestSealJobIsUniqueWhilePending: inserting the job twice before it runs leaves one job.
func TestSealJobIsUniqueWhilePending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	rc, err := jobs.NewClient(pool, ledger.New(pool), rebate.NewEngine(pool, ledger.New(pool)), jobs.Config{Workers: false})
	require.NoError(t, err)
	first, err := rc.Insert(ctx, jobs.SealArgs{}, nil)
	require.NoError(t, err)
	second, err := rc.Insert(ctx, jobs.SealArgs{}, nil)
	require.NoError(t, err)
	require.True(t, second.UniqueSkippedAsDuplicate)
	require.Equal(t, first.Job.ID, second.Job.ID)
}
