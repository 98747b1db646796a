package wallet_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

// The model's program: small limits, so that random histories reach every refusal.
const (
	mMin, mMax, mReview   = "10.00", "300.00", "150.00"
	mDailyCount           = 3
	mDaily, mMonthly      = "500.00", "1200.00"
	mFeeRate, mFeeMinimum = "0.01", "1.00"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

type mWithdrawal struct {
	member string
	amount decimal.Decimal
	status string
	batch  bool
	day    int
	done   map[wallet.Action]bool // actions that succeeded: repeating them replays
}

// monthOf is the month of the model's day n.
func monthOf(n int) time.Month { return t0.AddDate(0, 0, n).Month() }

// model is what the wallet must do, computed the simple way: balances as numbers, limits by
// counting the withdrawals of the model's day.
type model struct {
	available, withdrawing map[string]decimal.Decimal
	ws                     map[string]*mWithdrawal
	day                    int
}

func (m *model) request(id, member string, amount decimal.Decimal) apperr.Code {
	if w, ok := m.ws[id]; ok {
		if w.member == member && w.amount.Equal(amount) {
			return "" // a replay
		}
		return apperr.IdempotencyConflict
	}
	fee := decimal.Max(amount.Mul(d(mFeeRate)).Round(2), d(mFeeMinimum))
	switch {
	case m.available[member].IsNegative():
		return apperr.OutstandingDebt
	case amount.LessThan(d(mMin)) || amount.LessThanOrEqual(fee):
		return apperr.BelowMinimum
	case amount.GreaterThan(d(mMax)):
		return apperr.AboveMaximum
	}
	count, day, month := 0, decimal.Zero, decimal.Zero
	for _, w := range m.ws {
		if w.member != member || w.status == wallet.Rejected || w.status == wallet.Cancelled || w.status == wallet.Failed {
			continue
		}
		if monthOf(w.day) == monthOf(m.day) && w.day <= m.day {
			month = month.Add(w.amount)
		}
		if w.day == m.day {
			count++
			day = day.Add(w.amount)
		}
	}
	switch {
	case count >= mDailyCount, day.Add(amount).GreaterThan(d(mDaily)), month.Add(amount).GreaterThan(d(mMonthly)):
		return apperr.LimitExceeded
	case amount.GreaterThan(m.available[member]):
		return apperr.InsufficientFunds
	}
	status := wallet.Approved
	if amount.GreaterThan(d(mReview)) {
		status = wallet.PendingReview
	}
	m.ws[id] = &mWithdrawal{member: member, amount: amount, status: status, day: m.day, done: map[wallet.Action]bool{}}
	m.available[member] = m.available[member].Sub(amount)
	m.withdrawing[member] = m.withdrawing[member].Add(amount)
	return ""
}

func (m *model) returnMoney(w *mWithdrawal) {
	m.available[w.member] = m.available[w.member].Add(w.amount)
	m.withdrawing[w.member] = m.withdrawing[w.member].Sub(w.amount)
}

func (m *model) act(id string, a wallet.Action) apperr.Code {
	w, ok := m.ws[id]
	if !ok {
		return apperr.NotFound
	}
	target := map[wallet.Action]string{wallet.Approve: wallet.Approved, wallet.Reject: wallet.Rejected, wallet.Cancel: wallet.Cancelled}[a]
	switch {
	case w.done[a]:
		return "" // the same action again replays
	case a == wallet.Approve && w.status == wallet.PendingReview,
		a == wallet.Reject && w.status == wallet.PendingReview,
		a == wallet.Cancel && (w.status == wallet.PendingReview || w.status == wallet.Approved) && !w.batch:
		if a != wallet.Approve {
			m.returnMoney(w)
		}
		w.status = target
		w.done[a] = true
		return ""
	}
	return apperr.InvalidState
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type bundle struct {
	ledger *ledger.Ledger
	wallet *wallet.Wallet
	clock  *clock.Manual
	pool   *pgxpool.Pool
	// items are the batch items in the order cuts made them, with their batch and withdrawal.
	items   []int64
	batchOf map[int64]string
	wOf     map[int64]string
}

func newBundle(t *testing.T) *bundle {
	pool, err := store.Open(context.Background(), pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	l := ledger.New(pool)
	clk := clock.NewManual(t0)
	w := wallet.New(pool, l, csvbank.Provider{})
	w.SetClock(clk)
	// Submission is the provider's business and has its own tests; here results are posted directly.
	w.SetSubmitScheduler(func(context.Context, pgx.Tx, string) error { return nil })
	rules, _ := json.Marshal(program.RulesJSON{Currency: "CNY", HoldPeriod: "168h", Rounding: "down", LevelRates: []string{"0.05"},
		FirstOrderBonus: "0.00", MaxRebateRatio: "0.15", Points: program.PointsJSON{PerUnit: "0", Validity: "8760h"},
		Withdrawal: program.WithdrawalJSON{Min: mMin, Max: mMax, DailyCount: mDailyCount, DailyAmount: mDaily,
			MonthlyAmount: mMonthly, FeeRate: mFeeRate, FeeMin: mFeeMinimum, ReviewAbove: mReview}})
	_, err = program.Put(context.Background(), pool, rules, t0.Add(-time.Hour), time.Time{})
	require.NoError(t, err)
	engine := rebate.NewEngine(pool, l)
	for _, m := range []string{"a", "b", "c"} {
		_, _, err := engine.Register(context.Background(), rebate.Registration{ID: m})
		require.NoError(t, err)
	}
	return &bundle{ledger: l, wallet: w, clock: clk, pool: pool, batchOf: map[int64]string{}, wOf: map[int64]string{}}
}

// step is one thing done to the wallet; a history of steps replays into a fresh database.
type step struct {
	kind       string // fund, debt, request, requests, act, cut, result, day
	id, member string
	amount     decimal.Decimal
	action     wallet.Action
	item       int
	paid       bool
	group      []step // requests decided together (RequestMany)
}

func (b *bundle) run(ctx context.Context, s step) (apperr.Code, error) {
	code := func(err error) (apperr.Code, error) {
		if err == nil {
			return "", nil
		}
		if c, ok := apperr.CodeOf(err); ok {
			return c, nil
		}
		return "", err
	}
	switch s.kind {
	case "fund", "debt":
		a, _ := money.New(s.amount, money.CNY)
		req := ledger.EntryRequest{Key: s.id, Kind: "release", OccurredAt: b.clock.Now(), Postings: []ledger.PostingRequest{
			{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
			{Account: ledger.MemberAccount(s.member, "available"), Side: ledger.Credit, Amount: a}}}
		if s.kind == "debt" {
			req.Kind, req.AllowOverdraft = "clawback", []string{ledger.MemberAccount(s.member, "available")}
			req.Postings[0].Side, req.Postings[1].Side = ledger.Credit, ledger.Debit
		}
		_, err := b.ledger.PostTx(ctx, req)
		return "", err
	case "request":
		_, _, err := b.wallet.Request(ctx, withdrawalOf(s))
		return code(err)
	case "requests":
		rs := make([]wallet.WithdrawalRequest, len(s.group))
		for i, r := range s.group {
			rs[i] = withdrawalOf(r)
		}
		var codes []string
		for _, o := range b.wallet.RequestMany(ctx, rs) {
			c, err := code(o.Err)
			if err != nil {
				return "", err
			}
			codes = append(codes, string(c))
		}
		return apperr.Code(strings.Join(codes, ",")), nil
	case "act":
		_, _, err := b.wallet.Act(ctx, s.id, s.action, "", "")
		return code(err)
	case "cut":
		bt, _, err := b.wallet.Cut(ctx, wallet.CutRequest{Currency: "CNY"})
		if bt != nil {
			for _, it := range bt.Items {
				b.items = append(b.items, it.ID)
				b.batchOf[it.ID], b.wOf[it.ID] = bt.ID, it.WithdrawalID
			}
		}
		return code(err)
	case "result":
		if s.item >= len(b.items) {
			return "", nil
		}
		status := wallet.ItemFailed
		if s.paid {
			status = wallet.ItemPaid
		}
		it := b.items[s.item]
		outs, err := b.wallet.ApplyResults(ctx, b.batchOf[it], []wallet.ItemResult{{ItemID: it, Status: status}})
		if err != nil {
			return code(err)
		}
		return code(outs[0].Err)
	case "day":
		b.clock.Advance(24 * time.Hour)
	}
	return "", nil
}

func withdrawalOf(s step) wallet.WithdrawalRequest {
	return wallet.WithdrawalRequest{ID: s.id, MemberID: s.member, Amount: s.amount.StringFixed(2),
		Currency: "CNY", Destination: wallet.Destination{Type: "bank", Account: "6222", Name: "x"}}
}

func (b *bundle) balances(ctx context.Context, members []string) map[string]string {
	out := map[string]string{}
	for _, m := range members {
		for _, bucket := range []string{"available", "withdrawing"} {
			a, err := b.ledger.Balance(ctx, ledger.MemberAccount(m, bucket), money.CNY)
			if err == nil {
				out[m+":"+bucket] = a.String()
			}
		}
	}
	for _, p := range []string{ledger.Cash, ledger.FeeIncome, ledger.RebateExpense} {
		a, err := b.ledger.Balance(ctx, p, money.CNY)
		if err == nil {
			out[p] = a.String()
		}
	}
	return out
}

// TestWalletMatchesReferenceModel runs random histories of funding, debts, withdrawals, reviews,
// cancels, cuts and payout results against the wallet and a model, checks every answer and balance,
// then replays the same history into a fresh database and gets identical balances.
func TestWalletMatchesReferenceModel(t *testing.T) {
	t.Parallel()
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		require.NoError(t, flag.Set("rapid.checks", "30"))
	}
	members := []string{"a", "b", "c"}
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		b := newBundle(t)
		defer b.pool.Close()
		m := &model{available: map[string]decimal.Decimal{}, withdrawing: map[string]decimal.Decimal{}, ws: map[string]*mWithdrawal{}}
		var log []step
		settled := map[int64]bool{}
		for i := range rapid.IntRange(5, 40).Draw(rt, "steps") {
			var s step
			request := func() step {
				return step{kind: "request", id: fmt.Sprintf("w%d", rapid.IntRange(0, i).Draw(rt, "wid")),
					member: rapid.SampledFrom(members).Draw(rt, "member"),
					amount: decimal.New(int64(rapid.IntRange(500, 40000).Draw(rt, "cents")), -2)}
			}
			switch rapid.IntRange(0, 12).Draw(rt, "kind") {
			case 0, 1:
				s = step{kind: "fund", id: fmt.Sprintf("f%d", i), member: rapid.SampledFrom(members).Draw(rt, "member"),
					amount: decimal.New(int64(rapid.IntRange(1, 60000).Draw(rt, "cents")), -2)}
			case 2:
				s = step{kind: "debt", id: fmt.Sprintf("d%d", i), member: rapid.SampledFrom(members).Draw(rt, "member"),
					amount: decimal.New(int64(rapid.IntRange(1, 5000).Draw(rt, "cents")), -2)}
			case 3, 4, 5:
				s = request()
			case 12:
				// A group of requests decided together, as the coalescer sends them: each must be
				// answered as if it came alone after the ones before it (a repeated id included).
				s = step{kind: "requests"}
				for range rapid.IntRange(2, 6).Draw(rt, "group") {
					s.group = append(s.group, request())
				}
			case 6, 7:
				s = step{kind: "act", id: fmt.Sprintf("w%d", rapid.IntRange(0, i).Draw(rt, "wid")),
					action: rapid.SampledFrom([]wallet.Action{wallet.Approve, wallet.Reject, wallet.Cancel}).Draw(rt, "action")}
			case 8:
				s = step{kind: "cut"}
			case 9, 10:
				s = step{kind: "result", item: rapid.IntRange(0, 20).Draw(rt, "item"), paid: rapid.Bool().Draw(rt, "paid")}
			case 11:
				s = step{kind: "day"}
			}
			before := len(b.items)
			got, err := b.run(ctx, s)
			require.NoError(rt, err)
			var want apperr.Code
			switch s.kind {
			case "fund":
				m.available[s.member] = m.available[s.member].Add(s.amount)
			case "debt":
				m.available[s.member] = m.available[s.member].Sub(s.amount)
			case "request":
				want = m.request(s.id, s.member, s.amount)
			case "requests":
				var codes []string
				for _, r := range s.group {
					codes = append(codes, string(m.request(r.id, r.member, r.amount)))
				}
				want = apperr.Code(strings.Join(codes, ","))
			case "act":
				want = m.act(s.id, s.action)
			case "cut":
				var ids []string
				for id, w := range m.ws {
					if w.status == wallet.Approved && !w.batch {
						ids = append(ids, id)
						w.batch = true
					}
				}
				var cut []string
				for _, it := range b.items[before:] {
					cut = append(cut, b.wOf[it])
				}
				require.ElementsMatch(rt, ids, cut, "a cut takes every approved withdrawal in no batch")
			case "result":
				if s.item < len(b.items) {
					it := b.items[s.item]
					w := m.ws[b.wOf[it]]
					status := wallet.Failed
					if s.paid {
						status = wallet.Paid
					}
					switch {
					case !settled[it]:
						settled[it] = true
						w.status = status
						m.withdrawing[w.member] = m.withdrawing[w.member].Sub(w.amount)
						if !s.paid {
							m.available[w.member] = m.available[w.member].Add(w.amount)
						}
					case w.status != status:
						want = apperr.InvalidState
					}
				}
			case "day":
				m.day++
			}
			require.Equal(rt, want, got, "step %d %+v", i, s)
			for _, mb := range members {
				bal := b.balances(ctx, []string{mb})
				if v, ok := bal[mb+":available"]; ok {
					require.Equal(rt, m.available[mb].StringFixed(2), v, "step %d: %s available", i, mb)
				}
				if v, ok := bal[mb+":withdrawing"]; ok {
					require.Equal(rt, m.withdrawing[mb].StringFixed(2), v, "step %d: %s withdrawing", i, mb)
				}
			}
			log = append(log, s)
		}
		rep, err := b.ledger.Verify(ctx)
		require.NoError(rt, err)
		require.True(rt, rep.OK(), rep.Problems)

		// The same history into a fresh database: identical balances.
		again := newBundle(t)
		defer again.pool.Close()
		for _, s := range log {
			_, err := again.run(ctx, s)
			require.NoError(rt, err)
		}
		require.Equal(rt, b.balances(ctx, members), again.balances(ctx, members))
	})
}
