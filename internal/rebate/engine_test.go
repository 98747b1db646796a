package rebate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

type testBundle struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	engine *rebate.Engine
}

var t0 = time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)

// putProgram is the default program with overrides; hold is long unless a test says otherwise.
func putProgram(t *testing.T, b *testBundle, edit func(r *program.RulesJSON)) {
	t.Helper()
	r := program.RulesJSON{
		Currency: "CNY", HoldPeriod: "8760h", Rounding: "down", LevelRates: []string{"0.05", "0.02", "0.01"},
		FirstOrderBonus: "0.00", MaxRebateRatio: "0.15",
		Points:     program.PointsJSON{PerUnit: "0", Validity: "8760h"},
		Withdrawal: program.WithdrawalJSON{Min: "10.00", Max: "5000.00", DailyCount: 3, DailyAmount: "10000.00", MonthlyAmount: "50000.00", FeeRate: "0.01", FeeMin: "1.00", ReviewAbove: "2000.00"},
	}
	if edit != nil {
		edit(&r)
	}
	body, err := json.Marshal(r)
	require.NoError(t, err)
	_, err = program.Put(context.Background(), b.pool, body, t0.Add(-24*time.Hour), time.Time{})
	require.NoError(t, err)
}

// setup starts a real River client whose release worker runs the engine.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	e := rebate.NewEngine(pool, l)
	// The engine's "now" stands two months after t0: the events these tests date around t0 stay
	// inside its window of accepted business times whatever day the tests run.
	e.SetClock(clock.NewManual(t0.Add(60 * 24 * time.Hour)))
	rc, err := jobs.NewClient(pool, l, e, jobs.Config{Workers: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	return &testBundle{pool: pool, ledger: l, engine: e}
}

// chain registers u1 <- u2 <- u3 <- buyer (each invited by the one before).
func chain(t *testing.T, b *testBundle, ids ...string) {
	t.Helper()
	for i, id := range ids {
		reg := rebate.Registration{ID: id}
		if i > 0 {
			reg.ReferrerID = ids[i-1]
		}
		_, _, err := b.engine.Register(context.Background(), reg)
		require.NoError(t, err)
	}
}

func paid(t *testing.T, b *testBundle, eventID, order, member, amount string, at time.Time) rebate.EventResult {
	t.Helper()
	res, err := b.engine.Apply(context.Background(), paidEvent(eventID, order, member, amount, at))
	require.NoError(t, err)
	return res
}

func paidEvent(eventID, order, member, amount string, at time.Time) rebate.Event {
	data, _ := json.Marshal(rebate.PaidData{OrderID: order, MemberID: member, Amount: amount, Currency: "CNY"})
	return rebate.Event{ID: eventID, Type: rebate.OrderPaid, OccurredAt: at, Data: data}
}

func refundEvent(eventID, order, refund, amount string, at time.Time) rebate.Event {
	data, _ := json.Marshal(rebate.RefundedData{OrderID: order, RefundID: refund, Amount: amount})
	return rebate.Event{ID: eventID, Type: rebate.OrderRefunded, OccurredAt: at, Data: data}
}

func balance(t *testing.T, b *testBundle, member, bucket string, cur money.Currency) string {
	t.Helper()
	a, err := b.ledger.Balance(context.Background(), ledger.MemberAccount(member, bucket), cur)
	require.NoError(t, err)
	return a.String()
}

func legs(res rebate.EventResult) map[string]string {
	out := map[string]string{}
	for _, r := range res.Rebates {
		out[r.MemberID+"/"+r.Leg] = r.Amount.String()
	}
	return out
}

func verifyClean(t *testing.T, b *testBundle) {
	t.Helper()
	rep, err := b.ledger.Verify(context.Background())
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
}

func TestAccrual(t *testing.T) {
	t.Parallel()

	t.Run("ThreeLevelsRoundDown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "u2", "u3", "buyer")
		res := paid(t, b, "e1", "o1", "buyer", "99.99", t0)
		require.Equal(t, rebate.Applied, res.Status)
		require.Equal(t, "applied", res.Status)
		require.Equal(t, map[string]string{"u3/level1": "4.99", "u2/level2": "1.99", "u1/level3": "0.99"}, legs(res))
		require.Equal(t, "4.99", balance(t, b, "u3", "held", money.CNY))
		require.Equal(t, "1.99", balance(t, b, "u2", "held", money.CNY))
		require.Equal(t, "0.99", balance(t, b, "u1", "held", money.CNY))
		exp, _ := b.ledger.Balance(context.Background(), ledger.RebateExpense, money.CNY)
		require.Equal(t, "7.97", exp.String())
		require.Len(t, res.EntryIDs, 1)
		require.Equal(t, t0.Add(8760*time.Hour), res.Rebates[0].ReleaseAt)
		verifyClean(t, b)
	})

	t.Run("FewerLevelsThanUpline", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.LevelRates = []string{"0.10"} })
		chain(t, b, "u1", "u2", "buyer")
		res := paid(t, b, "e1", "o1", "buyer", "10.00", t0)
		require.Equal(t, map[string]string{"u2/level1": "1.00"}, legs(res))
	})

	t.Run("CapCutsLegsInLevelOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.MaxRebateRatio = "0.06" })
		chain(t, b, "u1", "u2", "u3", "buyer")
		// cap = round_down(100.00 × 0.06) = 6.00: level1 5.00, level2 1.00 (of 2.00), level3 nothing.
		res := paid(t, b, "e1", "o1", "buyer", "100.00", t0)
		require.Equal(t, map[string]string{"u3/level1": "5.00", "u2/level2": "1.00"}, legs(res))
	})

	t.Run("FirstOrderBonusMilestoneAndPoints", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) {
			r.FirstOrderBonus = "5.00"
			r.Milestones = []program.MilestoneJSON{{Converted: 1, Bonus: "10.00"}, {Converted: 2, Bonus: "20.00"}}
			r.Points.PerUnit = "1"
		})
		chain(t, b, "ref", "a")
		_, _, err := b.engine.Register(context.Background(), rebate.Registration{ID: "b", ReferrerID: "ref"})
		require.NoError(t, err)
		first := paid(t, b, "e1", "o1", "a", "50.50", t0)
		require.Equal(t, map[string]string{"ref/level1": "2.52", "ref/first_order_bonus": "5.00", "ref/milestone": "10.00", "ref/points": "50"}, legs(first))
		second := paid(t, b, "e2", "o2", "a", "10.00", t0.Add(time.Hour))
		require.Equal(t, map[string]string{"ref/level1": "0.50", "ref/points": "10"}, legs(second), "a is converted already: no bonus")
		third := paid(t, b, "e3", "o3", "b", "10.00", t0.Add(2*time.Hour))
		require.Equal(t, map[string]string{"ref/level1": "0.50", "ref/first_order_bonus": "5.00", "ref/milestone": "20.00", "ref/points": "10"}, legs(third))
		require.Equal(t, "43.52", balance(t, b, "ref", "held", money.CNY))
		require.Equal(t, "70", balance(t, b, "ref", "held", money.PTS))
		verifyClean(t, b)
	})

	t.Run("TierRaisesLevel1RateForward", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) {
			r.Tiers = []program.TierJSON{{MinConverted: 2, Level1Rate: "0.10"}}
		})
		chain(t, b, "ref")
		for _, id := range []string{"a", "b"} {
			_, _, err := b.engine.Register(context.Background(), rebate.Registration{ID: id, ReferrerID: "ref"})
			require.NoError(t, err)
		}
		r1 := paid(t, b, "e1", "o1", "a", "100.00", t0)
		require.Equal(t, "5.00", legs(r1)["ref/level1"], "1 converted: base rate")
		r2 := paid(t, b, "e2", "o2", "b", "100.00", t0.Add(time.Hour))
		require.Equal(t, "10.00", legs(r2)["ref/level1"], "b's order makes 2 converted, counting this one")
		refund, err := b.engine.Apply(context.Background(), refundEvent("e3", "o1", "r1", "100.00", t0.Add(2*time.Hour)))
		require.NoError(t, err)
		require.Equal(t, rebate.Applied, refund.Status)
		r3 := paid(t, b, "e4", "o3", "a", "100.00", t0.Add(3*time.Hour))
		require.Equal(t, "10.00", legs(r3)["ref/level1"], "refunds never lower the tier")
	})

	t.Run("NoUplineNoRebateButOrderCounts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "solo")
		res := paid(t, b, "e1", "o1", "solo", "10.00", t0)
		require.Equal(t, rebate.Applied, res.Status)
		require.Empty(t, res.Rebates)
		require.Empty(t, res.EntryIDs)
		o, err := b.engine.Order(context.Background(), "o1")
		require.NoError(t, err)
		require.Equal(t, "10.00", o.Amount.String())
	})
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PartialRefundsAddUpToExactlyTheRebate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "u2", "u3", "buyer")
		paid(t, b, "e1", "o1", "buyer", "99.99", t0)
		steps := []struct{ amount, held3, held2, held1 string }{
			{"30.00", "3.49", "1.39", "0.69"}, // kept = round_down(lot × 69.99/99.99)
			{"30.00", "1.99", "0.79", "0.39"}, // × 39.99/99.99
			{"39.99", "0.00", "0.00", "0.00"}, // full: everything back, to the cent
		}
		for i, s := range steps {
			res, err := b.engine.Apply(ctx, refundEvent(fmt.Sprintf("r%d", i), "o1", fmt.Sprintf("ref%d", i), s.amount, t0.Add(time.Duration(i+1)*time.Hour)))
			require.NoError(t, err)
			require.Equal(t, rebate.Applied, res.Status)
			require.Equal(t, s.held3, balance(t, b, "u3", "held", money.CNY), "step %d", i)
			require.Equal(t, s.held2, balance(t, b, "u2", "held", money.CNY), "step %d", i)
			require.Equal(t, s.held1, balance(t, b, "u1", "held", money.CNY), "step %d", i)
		}
		exp, _ := b.ledger.Balance(ctx, ledger.RebateExpense, money.CNY)
		require.Equal(t, "0.00", exp.String())
		o, err := b.engine.Order(ctx, "o1")
		require.NoError(t, err)
		for _, l := range o.Lots {
			require.True(t, l.Accrued.Equal(l.ClawedBack), "%s %s", l.MemberID, l.Leg)
		}
		require.Equal(t, "refunded,held", o.Status)
		verifyClean(t, b)
	})

	t.Run("RefundAboveOrderIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "buyer")
		paid(t, b, "e1", "o1", "buyer", "10.00", t0)
		_, err := b.engine.Apply(ctx, refundEvent("r1", "o1", "ref1", "6.00", t0.Add(time.Hour)))
		require.NoError(t, err)
		_, err = b.engine.Apply(ctx, refundEvent("r2", "o1", "ref2", "4.01", t0.Add(2*time.Hour)))
		require.ErrorIs(t, err, rebate.ErrRefundExceedsOrder)
		o, _ := b.engine.Order(ctx, "o1")
		require.Equal(t, "6.00", o.Refunded.String())
		require.Equal(t, "0.20", balance(t, b, "u1", "held", money.CNY))
		// The refused event left no trace: its id can be used again.
		_, err = b.engine.Apply(ctx, refundEvent("r2", "o1", "ref2", "4.00", t0.Add(2*time.Hour)))
		require.NoError(t, err)
	})

	t.Run("FirstOrderBonusClawedOnlyByFullRefundMilestoneNever", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) {
			r.FirstOrderBonus = "5.00"
			r.Milestones = []program.MilestoneJSON{{Converted: 1, Bonus: "10.00"}}
		})
		chain(t, b, "ref", "a")
		paid(t, b, "e1", "o1", "a", "20.00", t0) // level1 1.00 + bonus 5.00 + milestone 10.00
		require.Equal(t, "16.00", balance(t, b, "ref", "held", money.CNY))
		_, err := b.engine.Apply(ctx, refundEvent("r1", "o1", "x1", "10.00", t0.Add(time.Hour)))
		require.NoError(t, err)
		require.Equal(t, "15.50", balance(t, b, "ref", "held", money.CNY))
		_, err = b.engine.Apply(ctx, refundEvent("r2", "o1", "x2", "10.00", t0.Add(2*time.Hour)))
		require.NoError(t, err)
		require.Equal(t, "10.00", balance(t, b, "ref", "held", money.CNY), "only the milestone stays")
	})

	t.Run("RefundBeforeItsOrderIsParkedThenApplied", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, nil)
		chain(t, b, "u1", "buyer")
		res, err := b.engine.Apply(ctx, refundEvent("r1", "o1", "ref1", "4.00", t0))
		require.NoError(t, err)
		require.Equal(t, rebate.Parked, res.Status)
		require.Equal(t, "parked", res.Status)
		res, err = b.engine.Apply(ctx, refundEvent("r2", "o1", "ref2", "7.00", t0))
		require.NoError(t, err)
		require.Equal(t, rebate.Parked, res.Status)
		paidRes := paid(t, b, "e1", "o1", "buyer", "10.00", t0.Add(time.Hour))
		require.Len(t, paidRes.EntryIDs, 3, "accrual, then each parked refund in arrival order")
		require.Equal(t, "0.00", balance(t, b, "u1", "held", money.CNY))
		o, err := b.engine.Order(ctx, "o1")
		require.NoError(t, err)
		require.Equal(t, "10.00", o.Refunded.String())
		require.Len(t, o.Anomalies, 1)
		require.Contains(t, o.Anomalies[0], "exceeded it by 1")
		verifyClean(t, b)
	})

	t.Run("RefundAfterReleaseCreatesDebt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.HoldPeriod = "0s" })
		chain(t, b, "u1", "buyer")
		paid(t, b, "e1", "o1", "buyer", "100.00", t0)
		require.Eventually(t, func() bool { return balance(t, b, "u1", "available", money.CNY) == "5.00" }, 20*time.Second, 20*time.Millisecond,
			"the River release job moves the rebate to available")
		require.Equal(t, "0.00", balance(t, b, "u1", "held", money.CNY))
		// The member spends it elsewhere: here, move it out of available by hand.
		_, err := b.ledger.PostTx(ctx, ledger.EntryRequest{Key: "spend", Kind: "withdrawal", OccurredAt: t0,
			Postings: []ledger.PostingRequest{
				{Account: "member:u1:available", Side: ledger.Debit, Amount: money.MustParse("5.00", money.CNY)},
				{Account: "member:u1:withdrawing", Side: ledger.Credit, Amount: money.MustParse("5.00", money.CNY)},
			}})
		require.NoError(t, err)
		_, err = b.engine.Apply(ctx, refundEvent("r1", "o1", "ref1", "100.00", t0.Add(time.Hour)))
		require.NoError(t, err)
		require.Equal(t, "-5.00", balance(t, b, "u1", "available", money.CNY), "a debt the member owes")
		require.NoError(t, b.engine.Release(ctx, "o1"), "releasing again does nothing")
		require.Equal(t, "-5.00", balance(t, b, "u1", "available", money.CNY))
		verifyClean(t, b)
	})
}

func TestEventsExactlyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, nil)
	chain(t, b, "u1", "buyer")
	first := paid(t, b, "e1", "o1", "buyer", "10.00", t0)
	again, err := b.engine.Apply(ctx, paidEvent("e1", "o1", "buyer", "10.00", t0))
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, first.EntryIDs, again.EntryIDs)
	require.Equal(t, legs(first), legs(again))

	_, err = b.engine.Apply(ctx, paidEvent("e1", "o1", "buyer", "10.01", t0))
	require.ErrorIs(t, err, rebate.ErrIdempotencyConflict)
	_, err = b.engine.Apply(ctx, paidEvent("e2", "o1", "buyer", "10.00", t0))
	require.ErrorIs(t, err, rebate.ErrIdempotencyConflict, "same order under another event id")
	_, err = b.engine.Apply(ctx, refundEvent("r1", "o1", "ref1", "1.00", t0))
	require.NoError(t, err)
	_, err = b.engine.Apply(ctx, refundEvent("r2", "o1", "ref1", "1.00", t0))
	require.ErrorIs(t, err, rebate.ErrIdempotencyConflict, "same refund under another event id")
	require.Equal(t, "0.45", balance(t, b, "u1", "held", money.CNY))

	for name, ev := range map[string]rebate.Event{
		"unknown member":  paidEvent("x1", "o9", "ghost", "10.00", t0),
		"wrong currency":  {ID: "x2", Type: rebate.OrderPaid, OccurredAt: t0, Data: json.RawMessage(`{"order_id":"o9","member_id":"buyer","amount":"10.00","currency":"USD"}`)},
		"too many digits": paidEvent("x3", "o9", "buyer", "10.001", t0),
		"zero":            paidEvent("x4", "o9", "buyer", "0", t0),
		"negative":        paidEvent("x5", "o9", "buyer", "-1.00", t0),
		"extra field":     {ID: "x6", Type: rebate.OrderPaid, OccurredAt: t0, Data: json.RawMessage(`{"order_id":"o9","member_id":"buyer","amount":"1.00","currency":"CNY","bonus":"9"}`)},
		"unknown type":    {ID: "x7", Type: "order.shipped", OccurredAt: t0, Data: json.RawMessage(`{}`)},
		"no data":         {ID: "x8", Type: rebate.OrderPaid, OccurredAt: t0},
		"number amount":   {ID: "x9", Type: rebate.OrderPaid, OccurredAt: t0, Data: json.RawMessage(`{"order_id":"o9","member_id":"buyer","amount":1.5,"currency":"CNY"}`)},
		"no occurred_at":  {ID: "x10", Type: rebate.OrderPaid, Data: json.RawMessage(`{"order_id":"o9","member_id":"buyer","amount":"1.00","currency":"CNY"}`)},
		"no order id":     paidEvent("x11", "", "buyer", "1.00", t0),
		"refund zero":     refundEvent("x12", "o1", "ref9", "0.00", t0),
	} {
		_, err := b.engine.Apply(ctx, ev)
		require.Error(t, err, name)
	}
	var events int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&events))
	require.Equal(t, 2, events, "refused events leave nothing behind")
	verifyClean(t, b)
}

// TestConcurrentEvents: 16 writers post orders of invitees of the same referrers, each event twice
// at once; every order is applied once and milestones are counted exactly.
func TestConcurrentEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, func(r *program.RulesJSON) {
		r.FirstOrderBonus = "1.00"
		r.Milestones = []program.MilestoneJSON{{Converted: 8, Bonus: "8.00"}, {Converted: 16, Bonus: "16.00"}}
	})
	chain(t, b, "top", "ref")
	for i := range 16 {
		_, _, err := b.engine.Register(ctx, rebate.Registration{ID: fmt.Sprintf("m%d", i), ReferrerID: "ref"})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		for range 2 {
			wg.Go(func() {
				_, err := b.engine.Apply(ctx, paidEvent(fmt.Sprintf("e%d", i), fmt.Sprintf("o%d", i), fmt.Sprintf("m%d", i), "10.00", t0))
				if err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 16 × (0.50 level1 + 1.00 bonus) + 8.00 + 16.00 for ref; 16 × 0.20 for top.
	require.Equal(t, "48.00", balance(t, b, "ref", "held", money.CNY))
	require.Equal(t, "3.20", balance(t, b, "top", "held", money.CNY))
	m, err := b.engine.GetMember(ctx, "ref")
	require.NoError(t, err)
	require.Equal(t, 16, m.ConvertedInvitees)
	verifyClean(t, b)
}

func TestRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, func(r *program.RulesJSON) { r.Points.SignupReferrer, r.Points.SignupReferee = 100, 50 })
	root, replayed, err := b.engine.Register(ctx, rebate.Registration{ID: "root"})
	require.NoError(t, err)
	require.False(t, replayed)
	require.Regexp(t, `^[2-9A-HJ-NP-Z]{6}$`, root.ReferralCode)
	chain(t, b, "a1")
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "a2", ReferrerID: "a1"})
	require.NoError(t, err)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "a3", ReferrerID: "a2"})
	require.NoError(t, err)
	m, _, err := b.engine.Register(ctx, rebate.Registration{ID: "a4", ReferralCode: mustCode(t, b, "a3")})
	require.NoError(t, err)
	require.Equal(t, []string{"a3", "a2", "a1"}, m.Upline, "nearest first, at most 3")

	again, replayed, err := b.engine.Register(ctx, rebate.Registration{ID: "a4", ReferralCode: mustCode(t, b, "a3")})
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, m.ReferralCode, again.ReferralCode)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "a4", ReferrerID: "a1"})
	require.ErrorIs(t, err, rebate.ErrIdempotencyConflict)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "z", ReferrerID: "nobody"})
	require.ErrorIs(t, err, rebate.ErrUnknownReferrer)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "z", ReferralCode: "QQQQQQ"})
	require.ErrorIs(t, err, rebate.ErrUnknownReferrer)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "z", ReferrerID: "z"})
	require.ErrorIs(t, err, rebate.ErrSelfReferral)
	_, _, err = b.engine.Register(ctx, rebate.Registration{ID: "bad id!"})
	require.ErrorIs(t, err, rebate.ErrValidation)

	// Sign-up points: a3 got 100 for inviting a4 and 50 for joining.
	require.Equal(t, "150", balance(t, b, "a3", "available", money.PTS))
	require.Equal(t, "50", balance(t, b, "a4", "available", money.PTS))
	verifyClean(t, b)
}

func mustCode(t *testing.T, b *testBundle, id string) string {
	m, err := b.engine.GetMember(context.Background(), id)
	require.NoError(t, err)
	return m.ReferralCode
}

func TestProgramValidation(t *testing.T) {
	t.Parallel()
	base := `{"currency":"CNY","hold_period":"168h","rounding":"down","level_rates":["0.05"],"first_order_bonus":"0",
		"max_rebate_ratio":"0.15","points":{"per_unit":"1","signup_referrer":0,"signup_referee":0,"validity":"8760h"},
		"withdrawal":{"min":"10.00","max":"5000.00","daily_count":3,"daily_amount":"1.00","monthly_amount":"1.00","fee_rate":"0.01","fee_min":"1.00","review_above":"2000.00"}}`
	_, _, err := program.ParseRules([]byte(base))
	require.NoError(t, err)
	for name, edit := range map[string][2]string{
		"four levels":        {`"level_rates":["0.05"]`, `"level_rates":["0.05","0.02","0.01","0.01"]`},
		"no levels":          {`"level_rates":["0.05"]`, `"level_rates":[]`},
		"rate of one":        {`"level_rates":["0.05"]`, `"level_rates":["1"]`},
		"negative rate":      {`"level_rates":["0.05"]`, `"level_rates":["-0.01"]`},
		"rate as number":     {`"level_rates":["0.05"]`, `"level_rates":[0.05]`},
		"ratio above one":    {`"max_rebate_ratio":"0.15"`, `"max_rebate_ratio":"1.5"`},
		"bonus too precise":  {`"first_order_bonus":"0"`, `"first_order_bonus":"1.001"`},
		"points currency":    {`"currency":"CNY"`, `"currency":"PTS"`},
		"unknown currency":   {`"currency":"CNY"`, `"currency":"BTC"`},
		"bad hold":           {`"hold_period":"168h"`, `"hold_period":"a week"`},
		"bad rounding":       {`"rounding":"down"`, `"rounding":"up"`},
		"unknown field":      {`"rounding":"down"`, `"rounding":"down","surprise":1`},
		"tiers not rising":   {`"rounding":"down"`, `"rounding":"down","tiers":[{"min_converted":5,"level1_rate":"0.07"},{"min_converted":5,"level1_rate":"0.08"}]`},
		"milestone negative": {`"rounding":"down"`, `"rounding":"down","milestones":[{"converted":1,"bonus":"-1.00"}]`},
	} {
		_, _, err := program.ParseRules([]byte(strings.Replace(base, edit[0], edit[1], 1)))
		require.ErrorIs(t, err, program.ErrInvalidProgram, name)
	}
}

// TestConcurrentRefunds: 16 refunds of 1.00 on a 10.00 order, each sent twice at once: exactly ten
// apply, the rest are refused, and the clawed-back total is exact.
func TestConcurrentRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	putProgram(t, b, nil)
	chain(t, b, "u1", "buyer")
	paid(t, b, "e0", "o1", "buyer", "10.00", t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := map[string]bool{}
	for i := range 16 {
		for range 2 {
			wg.Go(func() {
				res, err := b.engine.Apply(ctx, refundEvent(fmt.Sprintf("r%d", i), "o1", fmt.Sprintf("x%d", i), "1.00", t0.Add(time.Hour)))
				if err != nil {
					require.ErrorIs(t, err, rebate.ErrRefundExceedsOrder)
					return
				}
				mu.Lock()
				applied[res.EventID] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	require.Len(t, applied, 10)
	o, err := b.engine.Order(ctx, "o1")
	require.NoError(t, err)
	require.Equal(t, "10.00", o.Refunded.String())
	require.Equal(t, "0.00", balance(t, b, "u1", "held", money.CNY))
	verifyClean(t, b)
}
