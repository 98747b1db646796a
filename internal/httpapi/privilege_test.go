package httpapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

// TestTheServingRoleRunsEverythingAndCannotAlterTheJournal runs the service as the serving login
// role (store.ServiceLogin): members, events, a release, a withdrawal paid by the simulated
// provider through River, sealing and the checker all work; and that role cannot change the journal
// by any route: no UPDATE, DELETE or TRUNCATE, no ALTER TABLE, no disabling triggers, no turning
// them off for its session, no dropping them.
func TestTheServingRoleRunsEverythingAndCannotAlterTheJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := simulated.New(10 * time.Millisecond)
	b := setupWith(t, setupOpts{asService: true, workers: true, provider: sim})
	var user string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, "rebate_service", user)

	// A webhook endpoint (its deliveries are written by every change below and sent by the
	// dispatcher) and a campaign (awarded and released as the serving role).
	hook := newHookReceiver(t)
	status, h, _ := b.do(t, "POST", "/v1/webhooks", b.operator, `{"url":"`+hook.URL+`","events":["member.registered","withdrawal.paid"],"secret":"0123456789abcdef0123"}`)
	require.Equal(t, 201, status, h)
	hook.mu.Lock()
	hook.secret = "0123456789abcdef0123"
	hook.mu.Unlock()
	now := b.clock.Now()
	status, c, _ := b.do(t, "POST", "/v1/campaigns", b.operator, `{"id":"c","metric":"invited","starts_at":"`+now.Add(-time.Hour).Format(time.RFC3339)+
		`","ends_at":"`+now.Add(time.Minute).Format(time.RFC3339)+`","prizes":[{"rank":1,"amount":"1.00"}]}`)
	require.Equal(t, 201, status, c)

	b.member(t, "a")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"b","referrer_id":"a"}`)
	require.Equal(t, 201, status, m)
	status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e1", "o1", "b", "2026-11-01T08:00:00Z"))
	require.Equal(t, 201, status, ev)
	require.NoError(t, b.engine.Release(ctx, "o1"))
	status, w := b.withdraw(t, b.shop, "a", "w1", "15.00")
	require.Equal(t, 201, status, w)
	bt, _, err := b.wallet.Cut(ctx, wallet.CutRequest{Currency: "CNY"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := b.wallet.Batch(ctx, bt.ID)
		require.NoError(t, err)
		return got.Status == wallet.BatchCompleted
	}, 30*time.Second, 50*time.Millisecond)
	b.clock.Advance(2 * time.Minute)
	require.NoError(t, b.campaigns.Award(ctx, "c"))
	b.clock.Advance(200 * time.Hour)
	require.NoError(t, b.campaigns.ReleasePrizes(ctx, "c"))
	require.Eventually(t, func() bool { return hook.count() == 3 }, 20*time.Second, 50*time.Millisecond,
		"two sign-ups and a payout told, as the serving role")
	pruned := int64(0)
	require.Eventually(t, func() bool { // the serving role prunes settled deliveries past the retention
		n, err := notify.Prune(ctx, b.pool, time.Now().Add(40*24*time.Hour), 30*24*time.Hour)
		require.NoError(t, err)
		pruned += n
		return pruned == 3
	}, 10*time.Second, 50*time.Millisecond)
	b.sealAll(t)
	ch, err := audit.NewChecker(b.pool).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, "ok", ch.Status, ch.Violations)

	for _, sql := range []string{
		`UPDATE entries SET kind = 'x'`,
		`UPDATE postings SET amount = amount + 1`,
		`UPDATE entry_seals SET hash = prev_hash`,
		`DELETE FROM postings`,
		`DELETE FROM entries`,
		`DELETE FROM withdrawals`,
		`TRUNCATE entries CASCADE`,
		`ALTER TABLE entries DISABLE TRIGGER ALL`,
		`ALTER TABLE postings DROP CONSTRAINT postings_amount_positive`,
		`DROP TRIGGER IF EXISTS entries_append_only ON entries`,
		`SET session_replication_role = replica`,
		`CREATE TABLE sneaky (x int)`,
	} {
		_, err := b.pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%s: %v", sql, err)
		require.Contains(t, []string{"42501"}, pgErr.Code, "%s: %s", sql, pgErr.Message)
	}
	b.requireSound(t)
}
