package rebate_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

func TestApplyBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RefusedEventChangesNothingAndCanBeSentAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		program(t, b, nil)
		chain(t, b, "u1", "buyer")
		late := paidEvent("e-late", "o-late", "late", "10.00", t0)
		out := b.engine.ApplyBatch(ctx, []rebate.Event{late, paidEvent("e-ok", "o-ok", "buyer", "10.00", t0)})
		require.ErrorIs(t, out[0].Err, rebate.ErrUnknownMember)
		require.NoError(t, out[1].Err)
		require.Equal(t, http.StatusCreated, out[1].Result.StatusCode)

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
			program(t, b, nil)
			chain(t, b, "u1", "u2", "u3", "buyer")
		}
		out := batched.engine.ApplyBatch(ctx, evs)
		for _, ev := range evs {
			_, err := alone.engine.Apply(ctx, ev)
			require.NoError(t, err)
		}
		require.Equal(t, http.StatusAccepted, out[0].Result.StatusCode)
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
		program(t, b, nil)
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
		program(t, b, nil)
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
	edit := func(r *rebate.RulesJSON) {
		r.Milestones = []rebate.MilestoneJSON{{Converted: 3, Bonus: "3.00"}, {Converted: 12, Bonus: "12.00"}}
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
		program(t, b, edit)
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
	program(t, b, func(r *rebate.RulesJSON) {
		r.Tiers = []rebate.TierJSON{{MinConverted: 5, Level1Rate: "0.07"}, {MinConverted: 10, Level1Rate: "0.10"}}
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
	require.Equal(t, http.StatusCreated, res.StatusCode)
	verifyClean(t, b)
}

// TestRebateTablesGuardWhatTheirChecksRelyOn: the rows that orders, lots, refunds and seals name
// cannot disappear or change their keys, and a row naming one that does not exist is refused.
// TestOrdersTakeEveryKnownCurrency: the orders table's currency check (spelled out, migration
// 0008) accepts every currency of the money package.
func TestOrdersTakeEveryKnownCurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	program(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	for _, cur := range money.Currencies() {
		_, err := b.pool.Exec(ctx, `WITH e AS (
				INSERT INTO events (id, type, request_hash, status_code, response)
				SELECT 'e-' || $1, type, request_hash, status_code, response FROM events WHERE id = 'e1' RETURNING id)
			INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at)
			SELECT 'o-' || $1, e.id, member_id, 1, $1, occurred_at, program_version, upline, release_at FROM orders, e WHERE order_id = 'o1'`, string(cur))
		require.NoError(t, err, cur)
	}
}

func TestRebateTablesGuardWhatTheirChecksRelyOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	program(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	for name, tc := range map[string]struct {
		sql  string
		code string
	}{
		"DeleteAnsweredEvent":    {`DELETE FROM events WHERE id = 'e1'`, "42501"},
		"UpdateEvent":            {`UPDATE events SET status_code = 500 WHERE id = 'e1'`, "42501"},
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
	} {
		_, err := b.pool.Exec(ctx, tc.sql)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, name)
		require.Equal(t, tc.code, pgErr.Code, "%s: %s", name, pgErr.Message)
	}
}
