package ledger_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
)

// TestWriter: entries added in steps (a later one referring to an earlier one's id) get their
// balances at Flush, summed per row; a decrease the entries do not allow is refused there.
func TestWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("BalancesAppliedAtFlush", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		err := store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			w := l.NewWriter(tx)
			first, err := w.Add(ctx, []ledger.EntryRequest{rebate("k1", map[string]string{"u1": "1.00", "u2": "2.00"})})
			require.NoError(t, err)
			release := move("k2", "member:u1:held", "member:u1:available", "0.40")
			release.RefersTo = first[0].ID
			_, err = w.Add(ctx, []ledger.EntryRequest{release})
			require.NoError(t, err)
			held, err := l.BalanceIn(ctx, tx, "member:u1:held", money.CNY)
			require.NoError(t, err)
			require.True(t, held.IsZero(), "nothing applied before Flush")
			return w.Flush(ctx)
		})
		require.NoError(t, err)
		for acct, want := range map[string]string{"member:u1:held": "0.60", "member:u1:available": "0.40", "member:u2:held": "2.00"} {
			bal, err := l.Balance(ctx, acct, money.CNY)
			require.NoError(t, err)
			require.Equal(t, want, bal.String(), acct)
		}
		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.Empty(t, rep.Problems)
	})

	t.Run("OverdraftRefusedAtFlush", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		_, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		err = store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			w := l.NewWriter(tx)
			if _, err := w.Add(ctx, []ledger.EntryRequest{move("k2", "member:u1:held", "member:u1:available", "1.01")}); err != nil {
				return err
			}
			return w.Flush(ctx)
		})
		require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
		require.Equal(t, 1, countRows(t, b.pool, "entries"), "rolled back")
	})
}
