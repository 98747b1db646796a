package rebate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

func TestApplyBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RefusedEventChangesNothingAndCanBeSentAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "buyer")
		late := paidEvent("e-late", "o-late", "late", "10.00", t0)
		out := b.engine.ApplyBatch(ctx, []rebate.Event{late, paidEvent("e-ok", "o-ok", "buyer", "10.00", t0)})
		require.ErrorIs(t, out[0].Err, rebate.ErrUnknownMember)
		require.NoError(t, out[1].Err)
		require.Equal(t, rebate.Applied, out[1].Result.Status)

		// The refused event left no trace: once its member exists, the same event applies.
		_, _, err := b.engine.Register(ctx, rebate.Registration{ID: "late", ReferrerID: "u1"})
		require.NoError(t, err)
		out = b.engine.ApplyBatch(ctx, []rebate.Event{late})
		require.NoError(t, out[0].Err)
		require.False(t, out[0].Result.Replayed)
		verifyClean(t, b)
	})

	t.Run("RefundBeforeItsOrderInOneBatchMatchesOneByOne", func(t *testing.T) {
		t.Parallel()
		evs := []rebate.Event{
			refundEvent("e1", "o1", "rf1", "3.00", t0),
			paidEvent("e2", "o1", "buyer", "10.00", t0),
			refundEvent("e3", "o1", "rf2", "2.00", t0),
		}
		batched, alone := setup(t), setup(t)
		for _, b := range []*testBundle{batched, alone} {
			putProgram(t, b, nil)
			chain(t, b, "u1", "u2", "u3", "buyer")
		}
		out := batched.engine.ApplyBatch(ctx, evs)
		for _, ev := range evs {
			_, err := alone.engine.Apply(ctx, ev)
			require.NoError(t, err)
		}
		require.Equal(t, rebate.Parked, out[0].Result.Status)
		require.Equal(t, "parked", out[0].Result.Status)
		require.Len(t, out[1].Result.EntryIDs, 2, "the accrual and the parked refund's clawback")
		require.Len(t, out[2].Result.EntryIDs, 1)
		for _, m := range []string{"u1", "u2", "u3"} {
			for _, cur := range []money.Currency{money.CNY, money.PTS} {
				require.Equal(t, balance(t, alone, m, "held", cur), balance(t, batched, m, "held", cur), m, cur)
			}
		}
		// 10.00 × 5% = 0.50 for u3, of which half (5.00 of 10.00 refunded) is clawed back.
		require.Equal(t, "0.25", balance(t, batched, "u3", "held", money.CNY))
		verifyClean(t, batched)
	})

	t.Run("SameIDTwiceInOneBatchIsAReplay", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "buyer")
		ev := paidEvent("e1", "o1", "buyer", "10.00", t0)
		changed := paidEvent("e1", "o1", "buyer", "11.00", t0)
		out := b.engine.ApplyBatch(ctx, []rebate.Event{ev, ev, changed})
		require.NoError(t, out[0].Err)
		require.NoError(t, out[1].Err)
		require.True(t, out[1].Result.Replayed)
		require.Equal(t, out[0].Result.EntryIDs, out[1].Result.EntryIDs)
		require.ErrorIs(t, out[2].Err, rebate.ErrIdempotencyConflict)
		require.Equal(t, "0.50", balance(t, b, "u1", "held", money.CNY)[:4])
	})

	t.Run("SameOrderUnderTwoEventIDsInOneBatchIsAConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "buyer")
		out := b.engine.ApplyBatch(ctx, []rebate.Event{
			paidEvent("e1", "o1", "buyer", "10.00", t0),
			paidEvent("e2", "o1", "buyer", "10.00", t0),
			refundEvent("e3", "o1", "rf1", "1.00", t0),
			refundEvent("e4", "o1", "rf1", "1.00", t0),
		})
		require.NoError(t, out[0].Err)
		require.ErrorIs(t, out[1].Err, rebate.ErrIdempotencyConflict)
		require.NoError(t, out[2].Err)
		require.ErrorIs(t, out[3].Err, rebate.ErrIdempotencyConflict)
		verifyClean(t, b)
	})
}

// TestConcurrentBatchesMatchOneByOne: batches that share referrers, applied concurrently, leave the
// balances and counters that applying every event alone gives (equal amounts make the totals
// independent of the order in which tiers and milestones are reached).
func TestConcurrentBatchesMatchOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	edit := func(r *program.RulesJSON) {
		r.Milestones = []program.MilestoneJSON{{Converted: 3, Bonus: "3.00"}, {Converted: 12, Bonus: "12.00"}}
	}
	const groups, perBatch, batches = 4, 10, 8
	var evs [][]rebate.Event
	for k := range batches {
		var batch []rebate.Event
		for i := range perBatch {
			n := k*perBatch + i
			batch = append(batch, paidEvent(fmt.Sprintf("e%d", n), fmt.Sprintf("o%d", n), fmt.Sprintf("m%d", n%(groups*8)), "10.00", t0))
		}
		evs = append(evs, batch)
	}
	concurrent, alone := setup(t), setup(t)
	for _, b := range []*testBundle{concurrent, alone} {
		putProgram(t, b, edit)
		chain(t, b, "top")
		for g := range groups {
			_, _, err := b.engine.Register(ctx, rebate.Registration{ID: fmt.Sprintf("ref%d", g), ReferrerID: "top"})
			require.NoError(t, err)
		}
		for i := range groups * 8 {
			_, _, err := b.engine.Register(ctx, rebate.Registration{ID: fmt.Sprintf("m%d", i), ReferrerID: fmt.Sprintf("ref%d", i%groups)})
			require.NoError(t, err)
		}
	}
	var wg sync.WaitGroup
	for _, batch := range evs {
		wg.Go(func() {
			for i, o := range concurrent.engine.ApplyBatch(ctx, batch) {
				if o.Err != nil {
					t.Errorf("event %s: %v", batch[i].ID, o.Err)
				}
			}
		})
	}
	wg.Wait()
	for _, batch := range evs {
		for _, ev := range batch {
			_, err := alone.engine.Apply(ctx, ev)
			require.NoError(t, err)
		}
	}
	for _, m := range []string{"top", "ref0", "ref1", "ref2", "ref3"} {
		require.Equal(t, balance(t, alone, m, "held", money.CNY), balance(t, concurrent, m, "held", money.CNY), m)
		a, err := alone.engine.GetMember(ctx, m)
		require.NoError(t, err)
		c, err := concurrent.engine.GetMember(ctx, m)
		require.NoError(t, err)
		require.Equal(t, a.ConvertedInvitees, c.ConvertedInvitees, m)
	}
	verifyClean(t, concurrent)
}

// TestCoalescedEventsAreAnsweredEachOnItsOwn: concurrent single events grouped into shared
// transactions are applied exactly once each, and a refused one is refused alone.
func TestCoalescedEventsAreAnsweredEachOnItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, func(r *program.RulesJSON) {
		r.Tiers = []program.TierJSON{{MinConverted: 5, Level1Rate: "0.07"}, {MinConverted: 10, Level1Rate: "0.10"}}
	})
	chain(t, b, "top", "ref")
	for i := range 16 {
		_, _, err := b.engine.Register(ctx, rebate.Registration{ID: fmt.Sprintf("m%d", i), ReferrerID: "ref"})
		require.NoError(t, err)
	}
	stop := b.engine.Coalesce(3, 8)
	var (
		wg                         sync.WaitGroup
		mu                         sync.Mutex
		applied, replayed, refused int
	)
	for i := range 16 {
		for copy := range 2 { // every event is sent twice, concurrently
			wg.Go(func() {
				res, err := b.engine.Apply(ctx, paidEvent(fmt.Sprintf("e%d", i), fmt.Sprintf("o%d", i), fmt.Sprintf("m%d", i), "10.00", t0))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("e%d copy %d: %v", i, copy, err)
				case res.Replayed:
					replayed++
				default:
					applied++
				}
			})
		}
		wg.Go(func() { // and a refused neighbour
			_, err := b.engine.Apply(ctx, paidEvent(fmt.Sprintf("x%d", i), fmt.Sprintf("ox%d", i), "ghost", "10.00", t0))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				require.ErrorIs(t, err, rebate.ErrUnknownMember)
				refused++
			}
		})
	}
	wg.Wait()
	stop()
	require.Equal(t, 16, applied)
	require.Equal(t, 16, replayed)
	require.Equal(t, 16, refused)
	// Level 1 by tier: converted 1-4 at 5%, 5-9 at 7%, 10-16 at 10%; each order counted once.
	require.Equal(t, "12.50", balance(t, b, "ref", "held", money.CNY))
	require.Equal(t, "3.20", balance(t, b, "top", "held", money.CNY))

	// Stopped, the engine applies events alone again.
	res, err := b.engine.Apply(ctx, paidEvent("after", "o-after", "m0", "10.00", t0))
	require.NoError(t, err)
	require.Equal(t, rebate.Applied, res.Status)
	verifyClean(t, b)
}

// TestOrdersTakeEveryKnownCurrency: the orders table's currency check (spelled out, migration
// 0008) accepts every currency of the money package.
func TestOrdersTakeEveryKnownCurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	for _, cur := range money.Currencies() {
		_, err := b.pool.Exec(ctx, `WITH e AS (
				INSERT INTO events (id, type, request_hash, response)
				SELECT 'e-' || $1, type, request_hash, response FROM events WHERE id = 'e1' RETURNING id)
			INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at)
			SELECT 'o-' || $1, e.id, member_id, 1, $1, occurred_at, program_version, upline, release_at FROM orders, e WHERE order_id = 'o1'`, string(cur))
		require.NoError(t, err, cur)
	}
}

// TestRebateTablesGuardWhatTheirChecksRelyOn: the rows that orders, lots, refunds and seals name
// cannot disappear or change their keys, and a row naming one that does not exist is refused.
func TestRebateTablesGuardWhatTheirChecksRelyOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	_, err := b.pool.Exec(ctx, `INSERT INTO events (id, type, request_hash, response)
		SELECT 'e-free', type, request_hash, response FROM events WHERE id = 'e1'`)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		sql  string
		code string
	}{
		"DeleteAnsweredEvent":    {`DELETE FROM events WHERE id = 'e1'`, "42501"},
		"UpdateEvent":            {`UPDATE events SET type = 'x' WHERE id = 'e1'`, "42501"},
		"DeleteMember":           {`DELETE FROM members WHERE id = 'buyer'`, "42501"},
		"ChangeUpline":           {`UPDATE members SET upline = '{}', referrer_id = NULL WHERE id = 'buyer'`, "42501"},
		"DeleteProgram":          {`DELETE FROM programs`, "42501"},
		"DeleteOrder":            {`DELETE FROM orders WHERE order_id = 'o1'`, "42501"},
		"ChangeOrderAmount":      {`UPDATE orders SET amount = 1 WHERE order_id = 'o1'`, "42501"},
		"DeleteLot":              {`DELETE FROM rebate_lots`, "42501"},
		"LotForUnknownMember":    {`INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, program_version, upline) SELECT 'o1', 'nobody', 'level2', 'CNY', 1, program_version, '{}' FROM orders WHERE order_id = 'o1'`, "23503"},
		"LotForUnknownOrder":     {`INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, program_version, upline) SELECT 'o-none', 'u1', 'level2', 'CNY', 1, program_version, '{}' FROM orders WHERE order_id = 'o1'`, "23503"},
		"OrderForUnknownEvent":   {`INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at) SELECT 'o2', 'e-none', member_id, amount, currency, occurred_at, program_version, upline, release_at FROM orders WHERE order_id = 'o1'`, "23503"},
		"OrderInUnknownCurrency": {`INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at) SELECT 'o2', event_id, member_id, amount, 'BTC', occurred_at, program_version, upline, release_at FROM orders WHERE order_id = 'o1'`, "23514"},
		"RefundForUnknownEvent":  {`INSERT INTO refunds (refund_id, event_id, order_id, amount, status) VALUES ('rf', 'e-none', 'o1', 1, 'parked')`, "23503"},
		"SealForUnknownEntry":    {`INSERT INTO entry_seals (seq, entry_id, entry_txid, prev_hash, hash) VALUES (999999, 999999, '1', decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))`, "23503"},
		"SealWithAnotherTxid":    {`INSERT INTO entry_seals (seq, entry_id, entry_txid, prev_hash, hash) SELECT 999999, id, '1', decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex') FROM entries LIMIT 1`, "23503"},
		"OrderForUnknownMember":  {`INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at) SELECT 'o2', 'e-free', 'nobody', amount, currency, occurred_at, program_version, upline, release_at FROM orders WHERE order_id = 'o1'`, "23503"},
		"OrderForUnknownProgram": {`INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at) SELECT 'o2', 'e-free', member_id, amount, currency, occurred_at, 999, upline, release_at FROM orders WHERE order_id = 'o1'`, "23503"},
		"OrderUnknownAccrual":    {`UPDATE orders SET accrual_entry_id = 999999 WHERE order_id = 'o1'`, "23503"},
		"OrderUnknownRelease":    {`UPDATE orders SET release_entry_id = 999999 WHERE order_id = 'o1'`, "23503"},
		"LotForUnknownProgram":   {`INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, program_version, upline) VALUES ('o1', 'u1', 'level2', 'CNY', 1, 999, '{}')`, "23503"},
		"RefundUnknownEntry":     {`INSERT INTO refunds (refund_id, event_id, order_id, amount, status, entry_id) VALUES ('rf', 'e1', 'o1', 1, 'applied', 999999)`, "23503"},
	} {
		_, err := b.pool.Exec(ctx, tc.sql)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, name)
		require.Equal(t, tc.code, pgErr.Code, "%s: %s", name, pgErr.Message)
	}
}

// TestReferenceChecksReadOnlyTheRowsTheyName: the statement triggers that stand in for foreign keys
// look each named row up, whatever the sizes of the statement and of the tables. A plan that hashed
// a whole table instead (PostgreSQL turns a NOT EXISTS under an OR into a hashed subplan when it
// estimates that cheaper) made each batch of orders read every entry of the journal.
func TestReferenceChecksReadOnlyTheRowsTheyName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No River workers: the sealer must not seal the entries the "Seals" case seals by hand.
	b := modelBundle(t)
	defer b.pool.Close()
	putProgram(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	// 3,000 more entries (balanced, on one account) and 200 more events.
	_, err := b.pool.Exec(ctx, `WITH e AS (
			INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at)
			SELECT 'bulk-' || g, decode(repeat('00', 32), 'hex'), 'bulk', now() FROM generate_series(1, 3000) g
			RETURNING id, recorded_at)
		INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
		SELECT e.id, a.id, 'CNY', s.side, 1, e.recorded_at
		FROM e, (SELECT id FROM accounts WHERE code = 'member:u1:held') a, (VALUES ('debit'), ('credit')) s(side)`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO events (id, type, request_hash, response)
		SELECT 'bulk-' || g, type, request_hash, response FROM events, generate_series(1, 200) g WHERE id = 'e1'`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "ANALYZE")
	require.NoError(t, err)
	idRows, err := b.pool.Query(ctx, "SELECT id, txid::text FROM entries WHERE kind = 'bulk' ORDER BY id DESC LIMIT 200")
	require.NoError(t, err)
	var entryIDs []int64
	var txids []string
	for idRows.Next() {
		var id int64
		var txid string
		require.NoError(t, idRows.Scan(&id, &txid))
		entryIDs, txids = append(entryIDs, id), append(txids, txid)
	}
	require.NoError(t, idRows.Err())

	// rowsRead runs stmt in a transaction it rolls back and returns how many rows of each table
	// it read, on a connection of its own: PostgreSQL 15 counts in pg_stat_xact_user_tables what
	// a backend did in earlier transactions too, until it reports its statistics.
	rowsRead := func(stmt string, args ...any) map[string]int64 {
		conn, err := pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig)
		require.NoError(t, err)
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		_, err = tx.Exec(ctx, stmt, args...)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, `SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables`)
		require.NoError(t, err)
		read := map[string]int64{}
		for rows.Next() {
			var rel string
			var n int64
			require.NoError(t, rows.Scan(&rel, &n))
			read[rel] = n
		}
		require.NoError(t, rows.Err())
		return read
	}
	for name, c := range map[string]struct {
		stmt string
		args []any
	}{
		// Each of 200 orders names an entry, an event and a member (the same one); the statement
		// names one program.
		"Orders": {`INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at, accrual_entry_id)
			SELECT 'bulk-' || n, 'bulk-' || n, member_id, amount, currency, occurred_at, program_version, upline, release_at, x.id
			FROM orders, unnest($1::bigint[]) WITH ORDINALITY AS x(id, n) WHERE order_id = 'o1'`, []any{entryIDs}},
		// Each of 200 refunds names an event and an entry (the order is not checked).
		"Refunds": {`INSERT INTO refunds (refund_id, event_id, order_id, amount, status, entry_id)
			SELECT 'bulk-' || n, 'bulk-' || n, 'o1', 0.01, 'applied', x.id FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, n)`, []any{entryIDs}},
		// Each of 200 seals names an entry of its transaction.
		"Seals": {`INSERT INTO entry_seals (seq, entry_id, entry_txid, prev_hash, hash)
			SELECT 1000000 + n, x.id, CAST(x.txid AS xid8), decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex')
			FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS x(id, txid, n)`, []any{entryIDs, txids}},
	} {
		read := rowsRead(c.stmt, c.args...)
		require.Positive(t, read["entries"], "%s: the check looked the entries up", name)
		// A lookup reads its row, or a little more (the two members are scanned, not looked up,
		// in a table that small); a whole-table read of entries is 3,000 rows or more.
		for _, rel := range []string{"entries", "events", "members", "programs", "orders"} {
			require.LessOrEqual(t, read[rel], int64(600), "%s: %d rows of %s read to check 200 rows", name, read[rel], rel)
		}
	}
}
