package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/notify"
)

// TestCheckerFindsWhatWasAlteredBehindTheTriggers changes a sealed posting's amount and a cached
// balance with the journal's triggers switched off, as only someone with the owner's rights could,
// and the next run reports both; the run after it has nothing new to check.
func TestCheckerFindsWhatWasAlteredBehindTheTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := journal(t)
	c := audit.NewChecker(pool)
	hook, _, err := notify.NewWebhooks(pool, nil, true).Register(ctx, notify.Registration{URL: "http://127.0.0.1:1/hook",
		Events: []string{notify.AuditViolation}})
	require.NoError(t, err)

	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE postings SET amount = 12.35 WHERE id = (SELECT min(p.id) FROM postings p JOIN entries e ON e.id = p.entry_id WHERE e.idempotency_key = 'accrual:o5' AND p.side = 'credit')`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE account_balances SET balance = balance + 1 WHERE account_id = (SELECT id FROM accounts WHERE code = 'member:u3:held' AND currency = 'CNY')`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SET session_replication_role = origin`)
	require.NoError(t, err)
	conn.Release()

	ch, err := c.Run(ctx)
	require.NoError(t, err)
	require.NotNil(t, ch)
	require.Equal(t, "violations", ch.Status)
	require.EqualValues(t, 1, ch.FromSeq)
	require.EqualValues(t, 36, ch.ToSeq)
	all := strings.Join(ch.Violations, "\n")
	require.Contains(t, all, "was altered after sealing", all)
	require.Contains(t, all, "does not balance in CNY", all)
	require.Contains(t, all, "account member:u3:held CNY: cached balance", all)
	// u1's held has no lots behind it in this journal (it was written without the engine).
	require.Contains(t, all, "member:u0:held CNY is", all)

	again, err := c.Run(ctx)
	require.NoError(t, err)
	require.Nil(t, again, "nothing sealed since")
	list, _, err := audit.Checks(ctx, pool, "", 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, ch.Violations, list[0].Violations)

	// The run's audit.violation notification was written with it, once.
	ds, _, err := notify.NewWebhooks(pool, nil, true).Deliveries(ctx, hook.ID, "", "", 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, notify.AuditViolation, ds[0].EventType)
	var told struct {
		Data struct {
			ID         int64    `json:"id"`
			Violations []string `json:"violations"`
			Total      int      `json:"violations_total"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(ds[0].Body, &told))
	require.Equal(t, ch.ID, told.Data.ID)
	require.Equal(t, ch.Violations, told.Data.Violations)
	require.Equal(t, len(ch.Violations), told.Data.Total)
}
