package rebate_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
)

// The reference model: the rules of the rebate issue §4, written again, small and independently,
// with decimals and no database. The property test runs random event sequences through both.

var (
	mRates     = []string{"0.05", "0.02", "0.01"}
	mTierAt    = 3
	mTierRate  = "0.08"
	mBonus     = "1.00"
	mMilestone = map[int]string{1: "2.00", 3: "5.00"}
	mCap       = "0.07"
)

func modelRules(r *program.RulesJSON) {
	r.LevelRates = mRates
	r.Tiers = []program.TierJSON{{MinConverted: mTierAt, Level1Rate: mTierRate}}
	r.FirstOrderBonus = mBonus
	r.Milestones = nil
	for _, c := range []int{1, 3} {
		r.Milestones = append(r.Milestones, program.MilestoneJSON{Converted: c, Bonus: mMilestone[c]})
	}
	r.MaxRebateRatio = mCap
	r.Points.PerUnit = "1"
}

type mLot struct {
	who, leg, cur  string
	amount, clawed decimal.Decimal
}

type mOrder struct {
	buyer       string
	x, refunded decimal.Decimal
	lots        []*mLot
	released    bool
}

type model struct {
	upline    map[string][]string
	paidCount map[string]int
	converted map[string]int
	orders    map[string]*mOrder
	parked    map[string][]decimal.Decimal // order -> refund amounts in arrival order
	bal       map[string]decimal.Decimal   // "member/bucket/cur"
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func floorTo(v decimal.Decimal, scale int32) decimal.Decimal {
	q, _ := v.QuoRem(decimal.NewFromInt(1), scale)
	return q
}

func (m *model) add(who, bucket, cur string, v decimal.Decimal) {
	k := who + "/" + bucket + "/" + cur
	m.bal[k] = m.bal[k].Add(v)
}

func (m *model) paid(order, buyer string, x decimal.Decimal) {
	o := &mOrder{buyer: buyer, x: x}
	m.orders[order] = o
	first := m.paidCount[buyer] == 0
	m.paidCount[buyer]++
	up := m.upline[buyer]
	if len(up) > 0 {
		u1 := up[0]
		if first {
			m.converted[u1]++
		}
		c := m.converted[u1]
		left := floorTo(x.Mul(d(mCap)), 2)
		for i, who := range up {
			rate := d(mRates[i])
			if i == 0 && c >= mTierAt {
				rate = d(mTierRate)
			}
			leg := decimal.Min(floorTo(x.Mul(rate), 2), left)
			left = left.Sub(leg)
			if leg.IsPositive() {
				o.lots = append(o.lots, &mLot{who: who, leg: fmt.Sprintf("level%d", i+1), cur: "CNY", amount: leg})
			}
		}
		if first {
			o.lots = append(o.lots, &mLot{who: u1, leg: "first_order_bonus", cur: "CNY", amount: d(mBonus)})
			if b, ok := mMilestone[c]; ok {
				o.lots = append(o.lots, &mLot{who: u1, leg: "milestone", cur: "CNY", amount: d(b)})
			}
		}
		if pts := floorTo(x, 0); pts.IsPositive() {
			o.lots = append(o.lots, &mLot{who: u1, leg: "points", cur: "PTS", amount: pts})
		}
	}
	for _, l := range o.lots {
		m.add(l.who, "held", l.cur, l.amount)
	}
	for _, r := range m.parked[order] {
		m.applyRefund(o, r, true)
	}
	delete(m.parked, order)
}

// refund returns false when the engine must refuse it.
func (m *model) refund(order string, r decimal.Decimal) bool {
	o, ok := m.orders[order]
	if !ok {
		m.parked[order] = append(m.parked[order], r)
		return true
	}
	if o.refunded.Add(r).GreaterThan(o.x) {
		return false
	}
	m.applyRefund(o, r, false)
	return true
}

func (m *model) applyRefund(o *mOrder, r decimal.Decimal, late bool) {
	if room := o.x.Sub(o.refunded); r.GreaterThan(room) {
		r = room // late refunds beyond the order: the excess is an anomaly, never clawed
	}
	o.refunded = o.refunded.Add(r)
	z := o.refunded
	bucket := "held"
	if o.released {
		bucket = "available"
	}
	for _, l := range o.lots {
		target := l.clawed
		switch l.leg {
		case "first_order_bonus":
			if z.Equal(o.x) {
				target = l.amount
			}
		case "milestone":
		default:
			scale := int32(2)
			if l.cur == "PTS" {
				scale = 0
			}
			kept, _ := l.amount.Mul(o.x.Sub(z)).QuoRem(o.x, scale)
			if t := l.amount.Sub(kept); t.GreaterThan(target) {
				target = t
			}
		}
		m.add(l.who, bucket, l.cur, l.clawed.Sub(target))
		l.clawed = target
	}
}

func (m *model) release(order string) {
	o, ok := m.orders[order]
	if !ok || o.released {
		return
	}
	o.released = true
	for _, l := range o.lots {
		left := l.amount.Sub(l.clawed)
		m.add(l.who, "held", l.cur, left.Neg())
		m.add(l.who, "available", l.cur, left)
	}
}

type step struct {
	kind  string // paid, refund, release, replay
	event rebate.Event
	order string
}

func TestEngineMatchesReferenceModel(t *testing.T) {
	t.Parallel()
	// Each case builds two databases; 30 cases keep the suite under a minute. Run with
	// -rapid.checks=N for more.
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		require.NoError(t, flag.Set("rapid.checks", "30"))
	}
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		b := modelBundle(t)
		defer b.pool.Close()
		m := &model{upline: map[string][]string{}, paidCount: map[string]int{}, converted: map[string]int{},
			orders: map[string]*mOrder{}, parked: map[string][]decimal.Decimal{}, bal: map[string]decimal.Decimal{}}

		// A random forest.
		n := rapid.IntRange(2, 9).Draw(rt, "members")
		var members []string
		for i := range n {
			id := fmt.Sprintf("m%d", i)
			reg := rebate.Registration{ID: id}
			if i > 0 && rapid.Bool().Draw(rt, "invited") {
				reg.ReferrerID = members[rapid.IntRange(0, i-1).Draw(rt, "inviter")]
			}
			mem, _, err := b.engine.Register(ctx, reg)
			require.NoError(rt, err)
			m.upline[id] = mem.Upline
			members = append(members, id)
		}

		var log []step
		var sent []rebate.Event
		at := t0
		orders := 0
		for i := range rapid.IntRange(1, 25).Draw(rt, "steps") {
			at = at.Add(time.Minute)
			var s step
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3: // a paid order
				orders++
				order := fmt.Sprintf("o%d", orders)
				amount := fmt.Sprintf("%d.%02d", rapid.IntRange(0, 300).Draw(rt, "units"), rapid.IntRange(1, 99).Draw(rt, "cents"))
				s = step{kind: "paid", order: order, event: paidEvent(fmt.Sprintf("ev%d", i), order, rapid.SampledFrom(members).Draw(rt, "buyer"), amount, at)}
			case 4, 5, 6: // a refund, possibly before its order, possibly too large
				order := fmt.Sprintf("o%d", rapid.IntRange(1, orders+2).Draw(rt, "refund of"))
				amount := fmt.Sprintf("%d.%02d", rapid.IntRange(0, 120).Draw(rt, "refund units"), rapid.IntRange(1, 99).Draw(rt, "refund cents"))
				s = step{kind: "refund", order: order, event: refundEvent(fmt.Sprintf("ev%d", i), order, fmt.Sprintf("r%d", i), amount, at)}
			case 7: // the hold ends
				if orders == 0 {
					continue
				}
				s = step{kind: "release", order: fmt.Sprintf("o%d", rapid.IntRange(1, orders).Draw(rt, "release"))}
			default: // the shop sends an earlier event again
				if len(sent) == 0 {
					continue
				}
				s = step{kind: "replay", event: rapid.SampledFrom(sent).Draw(rt, "again")}
			}
			log = append(log, s)
			require.NoError(rt, apply(ctx, b, s, m, true))
			if s.kind == "paid" || s.kind == "refund" {
				sent = append(sent, s.event)
			}
		}

		want := map[string]string{}
		for k, v := range m.bal {
			if !v.IsZero() {
				want[k] = v.String()
			}
		}
		got := engineBalances(t, b, members)
		require.Equal(rt, want, got)
		verifyClean(t, b)

		// The same log into a fresh database gives the same balances and the same journal.
		fresh := modelBundle(t)
		defer fresh.pool.Close()
		for _, id := range members {
			reg := rebate.Registration{ID: id}
			if up := m.upline[id]; len(up) > 0 {
				reg.ReferrerID = up[0]
			}
			_, _, err := fresh.engine.Register(ctx, reg)
			require.NoError(rt, err)
		}
		for _, s := range log {
			require.NoError(rt, apply(ctx, fresh, s, nil, false))
		}
		require.Equal(rt, got, engineBalances(t, fresh, members))
		require.Equal(rt, journal(t, b), journal(t, fresh))

		// And again with the events sent in batches of random sizes (a release ends a batch): the
		// same balances and the same entries (a batch numbers a refund of an order paid in the same
		// batch after the batch's other entries, so entries are compared by key).
		batched := modelBundle(t)
		defer batched.pool.Close()
		for _, id := range members {
			reg := rebate.Registration{ID: id}
			if up := m.upline[id]; len(up) > 0 {
				reg.ReferrerID = up[0]
			}
			_, _, err := batched.engine.Register(ctx, reg)
			require.NoError(rt, err)
		}
		var pending []rebate.Event
		send := func() {
			for i, o := range batched.engine.ApplyBatch(ctx, pending) {
				if o.Err != nil && !errors.Is(o.Err, rebate.ErrRefundExceedsOrder) {
					rt.Fatalf("batch event %s: %v", pending[i].ID, o.Err)
				}
			}
			pending = nil
		}
		for _, s := range log {
			if s.kind == "release" {
				send()
				require.NoError(rt, apply(ctx, batched, s, nil, false))
				continue
			}
			pending = append(pending, s.event)
			if rapid.IntRange(0, 3).Draw(rt, "cut") == 0 {
				send()
			}
		}
		send()
		require.Equal(rt, got, engineBalances(t, batched, members))
		require.ElementsMatch(rt, journal(t, b), journal(t, batched))
		verifyClean(t, batched)
	})
}

// modelBundle is a fresh database whose pool the caller closes when the iteration ends (rapid runs
// many iterations inside one test; the databases are dropped when the test ends).
func modelBundle(t *testing.T) *testBundle {
	pool, err := store.Open(context.Background(), pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	l := ledger.New(pool)
	e := rebate.NewEngine(pool, l)
	// The engine's "now" stands two months after t0: the events these tests date around t0 stay
	// inside its window of accepted business times whatever day the tests run.
	e.SetClock(clock.NewManual(t0.Add(60 * 24 * time.Hour)))
	// Releases are driven by the test's steps; the River release job has its own tests.
	e.SetScheduler(func(context.Context, pgx.Tx, []rebate.Release) error { return nil })
	b := &testBundle{pool: pool, ledger: l, engine: e}
	putProgram(t, b, modelRules)
	return b
}

// apply runs one step on the engine, and on the model when m is not nil, checking that the engine
// refuses exactly what the model refuses.
func apply(ctx context.Context, b *testBundle, s step, m *model, check bool) error {
	switch s.kind {
	case "release":
		if err := b.engine.Release(ctx, s.order); err != nil && !errors.Is(err, rebate.ErrNotFound) {
			return err
		}
		if m != nil {
			m.release(s.order)
		}
		return nil
	case "replay":
		res, err := b.engine.Apply(ctx, s.event)
		if err == nil && check && !res.Replayed {
			return fmt.Errorf("event %s applied twice", s.event.ID)
		}
		if errors.Is(err, rebate.ErrRefundExceedsOrder) {
			return nil // it was refused the first time too, and changed nothing then
		}
		return err
	}
	_, err := b.engine.Apply(ctx, s.event)
	if m == nil {
		if errors.Is(err, rebate.ErrRefundExceedsOrder) {
			return nil
		}
		return err
	}
	var ok bool
	switch s.kind {
	case "paid":
		var pd rebate.PaidData
		_ = json.Unmarshal(s.event.Data, &pd)
		m.paid(pd.OrderID, pd.MemberID, d(pd.Amount))
		ok = true
	case "refund":
		var rd rebate.RefundedData
		_ = json.Unmarshal(s.event.Data, &rd)
		ok = m.refund(rd.OrderID, d(rd.Amount))
	}
	switch {
	case ok && err != nil:
		return fmt.Errorf("%s %s: engine refused what the model accepts: %w", s.kind, s.event.ID, err)
	case !ok && !errors.Is(err, rebate.ErrRefundExceedsOrder):
		return fmt.Errorf("%s %s: model refuses, engine said %v", s.kind, s.event.ID, err)
	}
	return nil
}

func engineBalances(t *testing.T, b *testBundle, members []string) map[string]string {
	out := map[string]string{}
	for _, id := range members {
		bs, err := b.engine.MemberBalances(context.Background(), id)
		require.NoError(t, err)
		for _, row := range bs {
			for bucket, a := range map[string]money.Amount{"held": row.Held, "available": row.Available} {
				if !a.IsZero() {
					out[id+"/"+bucket+"/"+string(row.Currency)] = a.Decimal().String()
				}
			}
		}
	}
	return out
}

// journal is every entry's key, kind and postings, in id order: what two replays must share.
func journal(t *testing.T, b *testBundle) []string {
	rows, err := b.pool.Query(context.Background(), `SELECT e.idempotency_key, e.kind,
		string_agg(a.code || ' ' || p.side || ' ' || p.amount::text || ' ' || p.currency, ', ' ORDER BY p.id)
		FROM entries e JOIN postings p ON p.entry_id = e.id JOIN accounts a ON a.id = p.account_id
		GROUP BY e.id ORDER BY e.id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var key, kind, postings string
		require.NoError(t, rows.Scan(&key, &kind, &postings))
		out = append(out, key+" "+kind+": "+postings)
	}
	require.NoError(t, rows.Err())
	return out
}
