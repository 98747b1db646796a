package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// TestPostManyWith: the entries and the caller's next statement commit together; if the entries
// fail, their error is the one reported (not the aborted transaction the caller's statement met),
// and nothing stays.
func TestPostManyWith(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, b := setup(t)
	_, err := b.pool.Exec(ctx, "CREATE TABLE side_rows (k text PRIMARY KEY)")
	require.NoError(t, err)
	sideRow := func(tx pgx.Tx, k string) func() error {
		return func() error {
			_, err := tx.Exec(ctx, "INSERT INTO side_rows VALUES ($1)", k)
			return err
		}
	}
	sideRows := func(k string) int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM side_rows WHERE k = $1", k).Scan(&n))
		return n
	}

	t.Run("BothCommit", func(t *testing.T) {
		err := store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			es, err := l.PostManyWith(ctx, tx, []ledger.EntryRequest{rebate("w1", map[string]string{"u1": "1.00"})}, sideRow(tx, "w1"))
			if err == nil && (len(es) != 1 || es[0].ID == 0) {
				err = errors.New("no entry returned")
			}
			return err
		})
		require.NoError(t, err)
		require.Equal(t, 1, sideRows("w1"))
		bal, err := l.Balance(ctx, "member:u1:held", money.CNY)
		require.NoError(t, err)
		require.Equal(t, "1.00", bal.String())
	})

	t.Run("TheEntriesErrorIsReported", func(t *testing.T) {
		err := store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			_, err := l.PostManyWith(ctx, tx, []ledger.EntryRequest{move("w2", "member:u1:held", "member:u1:available", "5.00")}, sideRow(tx, "w2"))
			return err
		})
		require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
		require.Zero(t, sideRows("w2"))
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
	})

	t.Run("TheCallersErrorIsReported", func(t *testing.T) {
		err := store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			_, err := l.PostManyWith(ctx, tx, []ledger.EntryRequest{rebate("w3", map[string]string{"u1": "1.00"})}, sideRow(tx, "w1"))
			return err
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "23505", pgErr.Code, "side row w1 exists")
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
	})
}

// TestPostManyWithReplays: a batch applies its net balance changes in its entries statement only
// when every key is new. A batch that mixes replays and new entries changes balances by its new
// entries alone, in a second statement, which still refuses an overdraft and rolls the batch back.
func TestPostManyWithReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, b := setup(t)
	postMany := func(reqs ...ledger.EntryRequest) ([]ledger.Entry, error) {
		var got []ledger.Entry
		err := l.Transact(ctx, func(tx pgx.Tx) (err error) { got, err = l.PostMany(ctx, tx, reqs); return err })
		return got, err
	}
	balance := func(code string) string {
		bal, err := l.Balance(ctx, code, money.CNY)
		require.NoError(t, err)
		return bal.String()
	}
	a1 := rebate("a1", map[string]string{"u1": "1.00", "u2": "2.00"})
	a2 := rebate("a2", map[string]string{"u1": "0.50"})
	first, err := postMany(a1, a2)
	require.NoError(t, err)
	require.Equal(t, "1.50", balance("member:u1:held"))

	t.Run("NewEntriesBesideReplays", func(t *testing.T) {
		b1 := rebate("b1", map[string]string{"u1": "0.25", "u3": "4.00"})
		b2 := move("b2", "member:u1:held", "member:u1:available", "1.75") // needs b1's credit and a1's
		got, err := postMany(a1, b1, a2, b2)
		require.NoError(t, err)
		require.True(t, got[0].Replayed)
		require.Equal(t, first[0].ID, got[0].ID)
		require.True(t, got[2].Replayed)
		require.False(t, got[1].Replayed)
		require.False(t, got[3].Replayed)
		require.Equal(t, "0.00", balance("member:u1:held"))
		require.Equal(t, "1.75", balance("member:u1:available"))
		require.Equal(t, "2.00", balance("member:u2:held"))
		require.Equal(t, "4.00", balance("member:u3:held"))
		require.Equal(t, "7.75", balance(ledger.RebateExpense))
	})

	t.Run("OverdraftBesideReplaysIsRefused", func(t *testing.T) {
		entries := countRows(t, b.pool, "entries")
		c1 := move("c1", "member:u2:held", "member:u2:available", "2.01")
		_, err := postMany(a1, c1)
		require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
		require.Equal(t, entries, countRows(t, b.pool, "entries"))
		require.Equal(t, "2.00", balance("member:u2:held"))
	})

	t.Run("OnlyReplays", func(t *testing.T) {
		entries := countRows(t, b.pool, "entries")
		got, err := postMany(a2, a1)
		require.NoError(t, err)
		require.True(t, got[0].Replayed && got[1].Replayed)
		require.Equal(t, entries, countRows(t, b.pool, "entries"))
		require.Equal(t, "7.75", balance(ledger.RebateExpense))
	})

	rep, err := l.Verify(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
}
