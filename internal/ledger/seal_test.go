package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
)

func sealedOrder(t *testing.T, b *testBundle) []int64 {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), "SELECT entry_id FROM entry_seals ORDER BY seq")
	require.NoError(t, err)
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	return ids
}

// sealCaughtUp seals until every committed entry is sealed. The sealer waits for the oldest
// transaction of the whole cluster, and other tests run transactions beside this one, so it may
// take a few rounds.
func sealCaughtUp(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := l.SealAll(context.Background())
		require.NoError(t, err)
		n, err := l.Unsealed(context.Background())
		require.NoError(t, err)
		if n == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "%d entries still unsealed", n)
		time.Sleep(5 * time.Millisecond)
	}
}

// sealUntil seals until the chain holds want seals.
func sealUntil(t *testing.T, l *ledger.Ledger, b *testBundle, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for countRows(t, b.pool, "entry_seals") < want {
		_, err := l.SealAll(context.Background())
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "fewer than %d seals", want)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSeal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LateCommitIsNeverSkipped", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		_, err := l.PostTx(ctx, rebate("before", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)

		// A takes an entry id and an xid first, but commits last.
		txA, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		defer txA.Rollback(ctx) //nolint:errcheck
		slow, err := l.Post(ctx, txA, rebate("slow", map[string]string{"u2": "2.00"}))
		require.NoError(t, err)

		fast, err := l.PostTx(ctx, rebate("fast", map[string]string{"u3": "3.00"}))
		require.NoError(t, err)
		require.Greater(t, fast.ID, slow.ID)

		sealUntil(t, l, b, 1)
		for range 5 {
			_, err := l.SealAll(ctx)
			require.NoError(t, err)
		}
		require.Equal(t, 1, countRows(t, b.pool, "entry_seals"), "nothing after A may be sealed while A runs")

		require.NoError(t, txA.Commit(ctx))
		sealCaughtUp(t, l)

		order := sealedOrder(t, b)
		require.Len(t, order, 3)
		require.Equal(t, []int64{slow.ID, fast.ID}, order[1:], "sealed in transaction order")
		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.Empty(t, rep.Problems)
		require.Equal(t, 3, rep.SealsChecked)
	})

	t.Run("EveryEntrySealedOnceUnderConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		done := make(chan error)
		for w := range 8 {
			go func() {
				for i := range 25 {
					if _, err := l.PostTx(ctx, rebate(fmt.Sprintf("w%d-%d", w, i), map[string]string{"u1": "0.01"})); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		sealerErr := make(chan error)
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					sealerErr <- nil
					return
				default:
				}
				if _, err := l.Seal(ctx, 7); err != nil {
					sealerErr <- err
					return
				}
			}
		}()
		for range 8 {
			require.NoError(t, <-done)
		}
		close(stop)
		require.NoError(t, <-sealerErr)
		sealCaughtUp(t, l)
		require.Equal(t, 200, countRows(t, b.pool, "entry_seals"))
		var distinct int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(DISTINCT entry_id) FROM entry_seals").Scan(&distinct))
		require.Equal(t, 200, distinct)
		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.Empty(t, rep.Problems)
	})

	t.Run("VerifyDetectsAlteredPosting", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		for i := range 3 {
			_, err := l.PostTx(ctx, rebate(fmt.Sprintf("k%d", i), map[string]string{"u1": "1.00", "u2": "2.00"}))
			require.NoError(t, err)
		}
		sealCaughtUp(t, l)
		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.Empty(t, rep.Problems)

		// Someone with superuser rights turns the triggers off and edits a posting.
		conn, err := b.pool.Acquire(ctx)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "SET session_replication_role = replica")
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `UPDATE postings SET amount = 9.00 WHERE id = (
			SELECT p.id FROM postings p JOIN accounts a ON a.id = p.account_id
			WHERE a.code = 'member:u2:held' ORDER BY p.id LIMIT 1)`)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "RESET session_replication_role")
		require.NoError(t, err)
		conn.Release()

		rep, err = l.Verify(ctx)
		require.NoError(t, err)
		joined := fmt.Sprint(rep.Problems)
		require.Contains(t, joined, "member:u2:held CNY: cached balance 6, postings sum to 13")
		require.Contains(t, joined, "was altered after sealing")
		require.Contains(t, joined, "does not balance in CNY")
	})

	t.Run("CanonicalFormIsStable", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		e, err := l.PostTx(ctx, rebate("k", map[string]string{"u1": "1.50"}))
		require.NoError(t, err)
		sealCaughtUp(t, l)
		read, err := l.Entry(ctx, b.pool, e.ID)
		require.NoError(t, err)
		canon, err := ledger.CanonicalJSON(read)
		require.NoError(t, err)
		var stored []byte
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT hash FROM entry_seals WHERE entry_id = $1", e.ID).Scan(&stored))
		require.Equal(t, stored, ledger.ChainHash(ledger.GenesisHash, canon))
		require.Contains(t, string(canon), `"amount":"1.50"`)
	})
}

func TestBalancesAsOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := setup(t)
	e1, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "5.00"}))
	require.NoError(t, err)
	e2, err := l.PostTx(ctx, move("k2", "member:u1:held", "member:u1:available", "2.00"))
	require.NoError(t, err)
	_, err = l.PostTx(ctx, rebate("k3", map[string]string{"u1": "1.25"}))
	require.NoError(t, err)

	at := func(ts *ledger.AccountBalance) string { return ts.Balance.String() }
	b1, err := l.Balances(ctx, "member:u1:held", &e1.RecordedAt)
	require.NoError(t, err)
	require.Equal(t, "5.00", at(&b1[0]))
	b2, err := l.Balances(ctx, "member:u1:held", &e2.RecordedAt)
	require.NoError(t, err)
	require.Equal(t, "3.00", at(&b2[0]))
	now, err := l.Balances(ctx, "member:u1:held", nil)
	require.NoError(t, err)
	require.Equal(t, "4.25", at(&now[0]))
	exp, err := l.Balances(ctx, ledger.RebateExpense, &e2.RecordedAt)
	require.NoError(t, err)
	require.Equal(t, "5.00", at(&exp[0]))

	lines, totals, err := l.TrialBalance(ctx, &e2.RecordedAt)
	require.NoError(t, err)
	require.Len(t, lines, 3)
	require.Len(t, totals, 1)
	require.Equal(t, "5.00", totals[0].Debit.String())
	require.Equal(t, "5.00", totals[0].Credit.String())
	_, cur, err := l.TrialBalance(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, "6.25", cur[0].Debit.String())
	require.Equal(t, "6.25", cur[0].Credit.String())

	_, err = l.Balances(ctx, "member:nobody:held", nil)
	require.ErrorIs(t, err, ledger.ErrNotFound)
}
