package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
)

type testBundle struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
}

func setup(t *testing.T) (*ledger.Ledger, *testBundle) {
	t.Helper()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	return l, &testBundle{pool: pool, ledger: l}
}

func cny(s string) money.Amount { return money.MustParse(s, money.CNY) }

// rebate is a rebate-shaped entry: the platform expense pays members' held balances.
func rebate(key string, credits map[string]string) ledger.EntryRequest {
	req := ledger.EntryRequest{Key: key, Kind: "accrual", OccurredAt: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
	total := money.Zero(money.CNY)
	for member, amt := range credits {
		a := cny(amt)
		total, _ = total.Add(a)
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount(member, "held"), Side: ledger.Credit, Amount: a})
	}
	req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: total})
	return req
}

func move(key, from, to, amt string) ledger.EntryRequest {
	return ledger.EntryRequest{Key: key, Kind: "release", OccurredAt: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC),
		Postings: []ledger.PostingRequest{
			{Account: from, Side: ledger.Debit, Amount: cny(amt)},
			{Account: to, Side: ledger.Credit, Amount: cny(amt)},
		}}
}

func countRows(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestPost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("WritesBalancedEntryAndBalances", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t)
		e, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "4.99", "u2": "1.99"}))
		require.NoError(t, err)
		require.False(t, e.Replayed)
		require.Len(t, e.Postings, 3)
		bal, err := l.Balance(ctx, "member:u1:held", money.CNY)
		require.NoError(t, err)
		require.Equal(t, "4.99", bal.String())
		exp, err := l.Balance(ctx, ledger.RebateExpense, money.CNY)
		require.NoError(t, err)
		require.Equal(t, "6.98", exp.String())
	})

	t.Run("ReplaySameRequestReturnsOriginal", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		first, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		again, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, first.RecordedAt, again.RecordedAt)
		require.Len(t, again.Postings, 2)
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
		bal, _ := l.Balance(ctx, "member:u1:held", money.CNY)
		require.Equal(t, "1.00", bal.String())
	})

	t.Run("ReplayDifferentRequestConflicts", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		_, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		_, err = l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.01"}))
		require.ErrorIs(t, err, ledger.ErrIdempotencyConflict)
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
		require.Equal(t, 2, countRows(t, b.pool, "postings"))
	})

	t.Run("ConcurrentDuplicatesWriteOneEntry", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		const n = 16
		ids := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				e, err := l.PostTx(ctx, rebate("same", map[string]string{"u1": "3.00", "u2": "2.00"}))
				ids[i], errs[i] = e.ID, err
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
		bal, _ := l.Balance(ctx, "member:u1:held", money.CNY)
		require.Equal(t, "3.00", bal.String())
	})

	t.Run("RejectsInvalidEntriesBeforeTheDatabase", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		unbalanced := rebate("u", map[string]string{"u1": "1.00"})
		unbalanced.Postings[1].Amount = cny("1.01")
		oneSided := rebate("o", map[string]string{"u1": "1.00"})
		oneSided.Postings = oneSided.Postings[:1]
		negative := move("n", "member:u1:held", "member:u1:available", "1.00")
		negative.Postings[0].Amount = cny("-1.00")
		negative.Postings[1].Amount = cny("-1.00")
		unknown := move("x", "platform:bank", "member:u1:available", "1.00")
		noKey := rebate("", map[string]string{"u1": "1.00"})
		badKind := rebate("bk", map[string]string{"u1": "1.00"})
		badKind.Kind = "Drop Table"
		for name, req := range map[string]ledger.EntryRequest{
			"unbalanced": unbalanced, "one posting": oneSided, "negative": negative,
			"unknown account": unknown, "no key": noKey, "bad kind": badKind,
		} {
			_, err := l.PostTx(ctx, req)
			require.Error(t, err, name)
			require.True(t, errors.Is(err, ledger.ErrInvalidEntry) || errors.Is(err, ledger.ErrUnknownAccount), "%s: %v", name, err)
		}
		require.Equal(t, 0, countRows(t, b.pool, "entries"))
	})

	t.Run("HeldCannotGoNegative", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		_, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		_, err = l.PostTx(ctx, move("k2", "member:u1:held", "member:u1:available", "1.01"))
		require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
	})

	t.Run("AvailableGoesNegativeOnlyWhenAllowed", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t)
		_, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
		require.NoError(t, err)
		_, err = l.PostTx(ctx, move("k2", "member:u1:held", "member:u1:available", "1.00"))
		require.NoError(t, err)
		clawback := move("k3", "member:u1:available", ledger.RebateExpense, "1.50")
		clawback.Kind = "clawback"
		clawback.Postings[1].Side = ledger.Credit
		_, err = l.PostTx(ctx, clawback)
		require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
		clawback.AllowOverdraft = []string{"member:u1:available"}
		_, err = l.PostTx(ctx, clawback)
		require.NoError(t, err)
		bal, _ := l.Balance(ctx, "member:u1:available", money.CNY)
		require.Equal(t, "-0.50", bal.String())
	})

	t.Run("CallerTransactionRollsBackEverything", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		err := l.Transact(ctx, func(tx pgx.Tx) error {
			if _, err := l.Post(ctx, tx, rebate("k1", map[string]string{"new-member": "1.00"})); err != nil {
				return err
			}
			return errors.New("caller changed its mind")
		})
		require.Error(t, err)
		require.Equal(t, 0, countRows(t, b.pool, "entries"))
		// The account the rolled-back entry created is gone too, and using it again works.
		_, err = l.PostTx(ctx, rebate("k1", map[string]string{"new-member": "1.00"}))
		require.NoError(t, err)
	})

	t.Run("AccountCreatedInARolledBackTransactionIsNotCached", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// The second post in the same transaction finds the account the first one created; the
		// ledger must not remember that uncommitted account once the transaction rolls back.
		err := l.Transact(ctx, func(tx pgx.Tx) error {
			if _, err := l.Post(ctx, tx, rebate("a", map[string]string{"fresh": "1.00"})); err != nil {
				return err
			}
			if _, err := l.Post(ctx, tx, rebate("b", map[string]string{"fresh": "2.00"})); err != nil {
				return err
			}
			return errors.New("roll back")
		})
		require.EqualError(t, err, "roll back")
		require.Equal(t, 0, countRows(t, b.pool, "accounts"))
		_, err = l.PostTx(ctx, rebate("c", map[string]string{"fresh": "3.00"}))
		require.NoError(t, err)
		bal, err := l.Balance(ctx, "member:fresh:held", money.CNY)
		require.NoError(t, err)
		require.Equal(t, "3.00", bal.String())
	})
}

// TestPostingsKeepRequestOrder: an entry's postings are numbered in the order of its request, and
// its balance rows end where the postings say, whether it is written alone (EntryPostOne) or
// with others (EntryPostMany); a replay writes nothing, alone or in a batch.
func TestPostingsKeepRequestOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, b := setup(t)
	entry := func(key string, members ...string) ledger.EntryRequest {
		req := ledger.EntryRequest{Key: key, Kind: "accrual", OccurredAt: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
		for i, m := range members {
			req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount(m, "held"), Side: ledger.Credit, Amount: cny(fmt.Sprintf("%d.00", i+1))})
		}
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: cny(fmt.Sprintf("%d.00", len(members)*(len(members)+1)/2))})
		return req
	}
	codes := func(id int64) []string {
		rows, err := b.pool.Query(ctx, `SELECT a.code FROM postings p JOIN accounts a ON a.id = p.account_id
			WHERE p.entry_id = $1 ORDER BY p.id`, id)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return got
	}
	want := func(members ...string) []string {
		var out []string
		for _, m := range members {
			out = append(out, ledger.MemberAccount(m, "held"))
		}
		return append(out, ledger.RebateExpense)
	}
	for _, batch := range []int{1, 3} {
		t.Run(fmt.Sprintf("Batch%d", batch), func(t *testing.T) {
			var reqs []ledger.EntryRequest
			for i := range batch {
				reqs = append(reqs, entry(fmt.Sprintf("order-%d-%d", batch, i), "zed", "amy", "max"))
			}
			var got []ledger.Entry
			require.NoError(t, l.Transact(ctx, func(tx pgx.Tx) (err error) { got, err = l.PostMany(ctx, tx, reqs); return err }))
			for _, e := range got {
				require.Equal(t, want("zed", "amy", "max"), codes(e.ID))
			}
			for m, amt := range map[string]string{"zed": "1.00", "amy": "2.00", "max": "3.00"} {
				bal, err := l.Balance(ctx, ledger.MemberAccount(m, "held"), money.CNY)
				require.NoError(t, err)
				sum := cny("0.00")
				for range batch {
					sum, _ = sum.Add(cny(amt))
				}
				// Batch1 ran first: Batch3 adds to it.
				if batch == 3 {
					sum, _ = sum.Add(cny(amt))
				}
				require.Equal(t, sum.String(), bal.String(), m)
			}
			var again []ledger.Entry
			require.NoError(t, l.Transact(ctx, func(tx pgx.Tx) (err error) { again, err = l.PostMany(ctx, tx, reqs); return err }))
			for i := range again {
				require.True(t, again[i].Replayed)
				require.Equal(t, got[i].ID, again[i].ID)
			}
		})
	}
	require.Equal(t, 4, countRows(t, b.pool, "entries"))
}

func TestDatabaseEnforcesJournalRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, b := setup(t)
	e, err := l.PostTx(ctx, rebate("k1", map[string]string{"u1": "1.00"}))
	require.NoError(t, err)

	for _, sql := range []string{
		"UPDATE postings SET amount = amount + 1",
		"DELETE FROM postings",
		"TRUNCATE postings CASCADE",
		"UPDATE entries SET kind = 'x'",
		"DELETE FROM entries",
	} {
		_, err := b.pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}

	t.Run("UnbalancedRawEntryFailsAtCommit", func(t *testing.T) {
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		err = rawPost(ctx, tx, "raw", `SELECT e.id, a.id, 'CNY', p.side, p.amount, e.recorded_at
			FROM e, accounts a, (VALUES ('credit', 5.00), ('debit', 4.99)) AS p(side, amount) WHERE a.code = 'member:u1:held'`)
		require.NoError(t, err, "the check is deferred to commit")
		err = tx.Commit(ctx)
		require.ErrorIs(t, store.InterpretError(err), store.ErrUnbalanced)
		require.ErrorContains(t, err, "does not balance in CNY")
		require.Equal(t, 1, countRows(t, b.pool, "entries"))
	})

	// The balance rule's cases, with raw SQL: each one fails the commit (or its statement, once the
	// check is immediate), and a balanced transaction of several statements commits.
	t.Run("BalanceRuleCases", func(t *testing.T) {
		const balanced = `SELECT e.id, a.id, 'CNY', p.side, p.amount, e.recorded_at
			FROM e, accounts a, (VALUES ('credit', 2.00), ('debit', 2.00)) AS p(side, amount) WHERE a.code = 'member:u1:held'`
		const unbalanced = `SELECT e.id, a.id, 'CNY', p.side, p.amount, e.recorded_at
			FROM e, accounts a, (VALUES ('credit', 2.00), ('debit', 1.00)) AS p(side, amount) WHERE a.code = 'member:u1:held'`
		const onePosting = `SELECT e.id, a.id, 'CNY', 'credit', 2.00, e.recorded_at FROM e, accounts a WHERE a.code = 'member:u1:held'`
		entriesBefore := countRows(t, b.pool, "entries")
		inTx := func(t *testing.T, steps func(tx pgx.Tx) error) error {
			t.Helper()
			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			if err := steps(tx); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}
		t.Run("EntryWithoutPostings", func(t *testing.T) {
			err := inTx(t, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at)
					VALUES ('bare', decode(repeat('00', 32), 'hex'), 'raw', now())`)
				require.NoError(t, err, "the check is deferred to commit")
				return nil
			})
			require.ErrorIs(t, store.InterpretError(err), store.ErrUnbalanced)
			require.ErrorContains(t, err, "has 0 postings")
		})
		t.Run("EntryWithOnePosting", func(t *testing.T) {
			err := inTx(t, func(tx pgx.Tx) error { return rawPost(ctx, tx, "one", onePosting) })
			require.ErrorContains(t, err, "has 1 postings")
		})
		t.Run("EveryStatementOfATransaction", func(t *testing.T) {
			// The unbalanced entry is in the second of three statements.
			err := inTx(t, func(tx pgx.Tx) error {
				for i, postings := range []string{balanced, unbalanced, balanced} {
					if err := rawPost(ctx, tx, fmt.Sprintf("stmt-%d", i), postings); err != nil {
						return err
					}
				}
				return nil
			})
			require.ErrorIs(t, store.InterpretError(err), store.ErrUnbalanced)
			require.ErrorContains(t, err, "does not balance in CNY")
			// Three balanced statements commit.
			require.NoError(t, inTx(t, func(tx pgx.Tx) error {
				for i := range 3 {
					if err := rawPost(ctx, tx, fmt.Sprintf("ok-%d", i), balanced); err != nil {
						return err
					}
				}
				return nil
			}))
			require.Equal(t, entriesBefore+3, countRows(t, b.pool, "entries"))
		})
		t.Run("StatementsAfterSetConstraintsImmediate", func(t *testing.T) {
			err := inTx(t, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "SET CONSTRAINTS entry_balanced IMMEDIATE")
				require.NoError(t, err)
				require.NoError(t, rawPost(ctx, tx, "imm-1", balanced))
				err = rawPost(ctx, tx, "imm-2", unbalanced)
				require.ErrorIs(t, store.InterpretError(err), store.ErrUnbalanced, "checked at the end of its statement")
				return err
			})
			require.Error(t, err)
		})
		t.Run("EachCurrencyOfAnEntry", func(t *testing.T) {
			_, err := b.pool.Exec(ctx, `INSERT INTO accounts (code, currency, kind, allow_negative)
				VALUES ('member:u9:held', 'USD', 'liability', true), ('platform:usd_test', 'USD', 'expense', true)`)
			require.NoError(t, err)
			err = inTx(t, func(tx pgx.Tx) error {
				return rawPost(ctx, tx, "fx", `SELECT e.id, a.id, a.currency, p.side, p.amount, e.recorded_at
					FROM e, (VALUES ('member:u1:held', 'credit', 2.00), ('platform:rebate_expense', 'debit', 2.00),
					                ('member:u9:held', 'credit', 3.00), ('platform:usd_test', 'debit', 2.50)) AS p(code, side, amount)
					JOIN accounts a ON a.code = p.code`)
			})
			require.ErrorContains(t, err, "does not balance in USD")
			// Debits equal credits over both currencies, not in each.
			err = inTx(t, func(tx pgx.Tx) error {
				return rawPost(ctx, tx, "fx-sum", `SELECT e.id, a.id, a.currency, p.side, p.amount, e.recorded_at
					FROM e, (VALUES ('member:u1:held', 'credit', 2.00), ('platform:usd_test', 'debit', 2.00)) AS p(code, side, amount)
					JOIN accounts a ON a.code = p.code`)
			})
			require.ErrorContains(t, err, "does not balance in CNY")
			// One statement, two entries: a balanced one in two currencies, then one that does not
			// balance in CNY; the check must not stop at the first.
			twoEntries := func(second string) func(tx pgx.Tx) error {
				return func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `WITH e AS (
						INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at)
						VALUES ('fx-ok', decode(repeat('00', 32), 'hex'), 'raw', now()), ('fx-next', decode(repeat('00', 32), 'hex'), 'raw', now())
						RETURNING id, idempotency_key, recorded_at)
					INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
					SELECT e.id, a.id, a.currency, p.side, p.amount, e.recorded_at
					FROM (VALUES ('fx-ok', 'member:u1:held', 'credit', 2.00), ('fx-ok', 'platform:rebate_expense', 'debit', 2.00),
					             ('fx-ok', 'member:u9:held', 'credit', 3.00), ('fx-ok', 'platform:usd_test', 'debit', 3.00),
					             ('fx-next', 'member:u1:held', 'credit', 1.00), ('fx-next', 'platform:rebate_expense', 'debit', `+second+`)) AS p(key, code, side, amount)
					JOIN e ON e.idempotency_key = p.key JOIN accounts a ON a.code = p.code`)
					return err
				}
			}
			require.ErrorContains(t, inTx(t, twoEntries("0.99")), "does not balance in CNY")
			require.NoError(t, inTx(t, twoEntries("1.00")))
		})
		require.Equal(t, entriesBefore+5, countRows(t, b.pool, "entries")) // three statements, then two entries in one
	})

	t.Run("PostingCannotJoinACommittedEntry", func(t *testing.T) {
		var acct int64
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM accounts WHERE code = 'member:u1:held'").Scan(&acct))
		_, err := b.pool.Exec(ctx, `INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
			SELECT $1, $2, 'CNY', 'credit', 5.00, recorded_at FROM entries WHERE id = $1`, e.ID, acct)
		require.ErrorIs(t, store.InterpretError(err), store.ErrUnbalanced)
		require.ErrorContains(t, err, "only be added to an entry by the statement that creates it")
	})

	// SET CONSTRAINTS ... IMMEDIATE runs the balance check of the entries written so far at once;
	// a posting added to such an entry by a later statement would never be checked. Postings can
	// only be written by their entry's statement, so it is refused, as is one added to an entry of
	// the same transaction whose check has not run yet.
	for name, immediate := range map[string]bool{"AfterSetConstraintsImmediate": true, "InALaterStatement": false} {
		t.Run("PostingCannotJoinAnEntry"+name, func(t *testing.T) {
			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			if immediate {
				_, err = tx.Exec(ctx, "SET CONSTRAINTS entry_balanced IMMEDIATE")
				require.NoError(t, err)
			}
			require.NoError(t, rawPost(ctx, tx, "raw-"+name, `SELECT e.id, a.id, 'CNY', p.side, 1.00, e.recorded_at
				FROM e, accounts a, (VALUES ('credit'), ('debit')) AS p(side) WHERE a.code = 'member:u1:held'`),
				"a balanced entry with its postings in one statement passes the check")
			_, err = tx.Exec(ctx, `INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
				SELECT e.id, a.id, 'CNY', 'debit', 5.00, e.recorded_at FROM entries e, accounts a
				WHERE e.idempotency_key = $1 AND a.code = 'member:u1:held'`, "raw-"+name)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "23514", pgErr.Code)
			require.ErrorContains(t, err, "only be added to an entry by the statement that creates it")
		})
	}

	// Raw entries with postings, each case breaking one rule among rows that keep them all: the
	// statement check must find the one bad row.
	t.Run("PostingsNameTheirOwnEntryAndAnExistingAccount", func(t *testing.T) {
		var acct, usd int64
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM accounts WHERE code = 'member:u1:held'").Scan(&acct))
		_, err := b.pool.Exec(ctx, "INSERT INTO accounts (code, currency, kind, allow_negative) VALUES ('member:u1:usd', 'USD', 'liability', false)")
		require.NoError(t, err)
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM accounts WHERE code = 'member:u1:usd'").Scan(&usd))
		earlier := "(SELECT id FROM entries WHERE idempotency_key = 'raw-earlier')"
		cases := map[string]struct {
			entry, account, recordedAt, currency string
			code, message                        string
		}{
			"NoSuchEntry":             {"999999999", "$1", "e.recorded_at", "'CNY'", "23514", "only be added to an entry by the statement"},
			"OtherRecordedAt":         {"e.id", "$1", "e.recorded_at - interval '1 second'", "'CNY'", "23514", "only be added to an entry by the statement"},
			"EntryOfAnotherTx":        {"$2", "$1", "(SELECT recorded_at FROM entries WHERE id = $2)", "'CNY'", "23514", "only be added to an entry by the statement"},
			"EntryOfEarlierStatement": {earlier, "$1", "(SELECT recorded_at FROM entries WHERE id = " + earlier + ")", "'CNY'", "23514", "only be added to an entry by the statement"},
			"NoSuchAccount":           {"e.id", "999999999", "e.recorded_at", "'CNY'", "23503", "account that does not exist"},
			"AccountOfAnotherCur":     {"e.id", "$3", "e.recorded_at", "'CNY'", "23503", "account that does not exist"},
			"CurrencyNotItsAccounts":  {"e.id", "$1", "e.recorded_at", "'USD'", "23503", "account that does not exist"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				tx, err := b.pool.Begin(ctx)
				require.NoError(t, err)
				defer tx.Rollback(ctx) //nolint:errcheck
				require.NoError(t, rawPost(ctx, tx, "raw-earlier", `SELECT e.id, a.id, 'CNY', p.side, 1.00, e.recorded_at
					FROM e, accounts a, (VALUES ('credit'), ('debit')) AS p(side) WHERE a.code = 'member:u1:held'`))
				err = rawPost(ctx, tx, "raw-"+name, `
					SELECT e.id, $1::bigint, 'CNY', 'credit', 1.00, e.recorded_at FROM e WHERE $2::bigint > 0 AND $3::bigint > 0
					UNION ALL
					SELECT (`+c.entry+`)::bigint, (`+c.account+`)::bigint, `+c.currency+`, 'debit', 1.00, (`+c.recordedAt+`)::timestamptz FROM e
					UNION ALL
					SELECT e.id, $1, 'CNY', 'debit', 0.01, e.recorded_at FROM e`,
					acct, e.ID, usd)
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				require.Equal(t, c.code, pgErr.Code)
				require.ErrorContains(t, err, c.message)
			})
		}
	})

	t.Run("ScaleAndSignChecked", func(t *testing.T) {
		for _, amt := range []string{"0", "-1.00", "1.001"} {
			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			err = rawPost(ctx, tx, "raw-"+amt, `SELECT e.id, a.id, 'CNY', 'credit', $1::numeric, e.recorded_at
				FROM e, accounts a WHERE a.code = 'member:u1:held'`, amt)
			require.Error(t, err, amt)
		}
	})

	// The database's scale per currency is the money package's: currency_scale(), which accounts
	// check, and the postings' own scale check, which spells the scales out.
	t.Run("DatabaseScalesAreTheMoneyPackages", func(t *testing.T) {
		for _, cur := range money.Currencies() {
			var dbScale int32
			require.NoError(t, b.pool.QueryRow(ctx, "SELECT currency_scale($1)", string(cur)).Scan(&dbScale))
			require.Equal(t, cur.Scale(), dbScale, cur)
			_, err := b.pool.Exec(ctx, "INSERT INTO accounts (code, currency, kind, allow_negative) VALUES ($1, $2, 'liability', true)",
				"member:scale:"+strings.ToLower(string(cur)), string(cur))
			require.NoError(t, err)
			exact := "1." + strings.Repeat("5", int(cur.Scale()))
			finer := exact + "1"
			if cur.Scale() == 0 {
				exact, finer = "7", "7.1"
			}
			for amt, ok := range map[string]bool{exact: true, finer: false} {
				tx, err := b.pool.Begin(ctx)
				require.NoError(t, err)
				defer tx.Rollback(ctx) //nolint:errcheck
				err = rawPost(ctx, tx, "raw-scale-"+string(cur)+amt, `SELECT e.id, a.id, a.currency, p.side, $1::numeric, e.recorded_at
					FROM e, accounts a, (VALUES ('credit'), ('debit')) AS p(side) WHERE a.code = $2`,
					amt, "member:scale:"+strings.ToLower(string(cur)))
				if ok {
					require.NoError(t, err, "%s %s", cur, amt)
					require.NoError(t, tx.Commit(ctx), "%s %s", cur, amt)
				} else {
					var pgErr *pgconn.PgError
					require.ErrorAs(t, err, &pgErr, "%s %s", cur, amt)
					require.Equal(t, "postings_amount_scale", pgErr.ConstraintName, "%s %s", cur, amt)
				}
			}
		}
	})
}

// rawPost writes an entry and its postings with one raw statement, as the ledger does: postings is
// a SELECT of (entry_id, account_id, currency, side, amount, recorded_at) that reads the new entry
// from e (id, recorded_at).
func rawPost(ctx context.Context, tx pgx.Tx, key, postings string, args ...any) error {
	_, err := tx.Exec(ctx, `WITH e AS (
		INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at)
		VALUES ('`+key+`', decode(repeat('00', 32), 'hex'), 'raw', now()) RETURNING id, recorded_at)
		INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at) `+postings, args...)
	return err
}

// TestConcurrentPostingKeepsBalancesExact: 32 writers post random entries between 50 member
// accounts and the hot platform account; every cached balance equals its postings and no account
// that may not go negative is below zero.
func TestConcurrentPostingKeepsBalancesExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := setup(t)
	members := make([]string, 50)
	for i := range members {
		members[i] = fmt.Sprintf("m%02d", i)
	}
	var (
		wg                    sync.WaitGroup
		mu                    sync.Mutex
		posted, refused, conf int
	)
	for w := range 32 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 40 {
				var req ledger.EntryRequest
				key := fmt.Sprintf("w%d-%d", w, i)
				a, c := members[r.IntN(50)], members[r.IntN(50)]
				amt := fmt.Sprintf("%d.%02d", r.IntN(20), r.IntN(99)+1)
				switch r.IntN(3) {
				case 0:
					req = rebate(key, map[string]string{a: amt, c: "0.01"})
				case 1: // may overdraw held: must be refused, never applied
					req = move(key, ledger.MemberAccount(a, "held"), ledger.MemberAccount(c, "available"), amt)
				default: // may overdraw available without permission: refused too
					req = move(key, ledger.MemberAccount(a, "available"), ledger.MemberAccount(a, "withdrawing"), amt)
				}
				_, err := l.PostTx(ctx, req)
				mu.Lock()
				switch {
				case err == nil:
					posted++
				case errors.Is(err, ledger.ErrInsufficientFunds):
					refused++
				default:
					conf++
					t.Errorf("post %s: %v", key, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Zero(t, conf)
	require.Positive(t, posted)
	require.Positive(t, refused, "the random workload should hit the overdraft guard")
	rep, err := l.Verify(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Greater(t, rep.AccountsChecked, 50)
	_, totals, err := l.TrialBalance(ctx, nil)
	require.NoError(t, err)
	for _, tot := range totals {
		require.True(t, tot.Debit.Equal(tot.Credit), "%s debits %s credits %s", tot.Currency, tot.Debit, tot.Credit)
	}
}
