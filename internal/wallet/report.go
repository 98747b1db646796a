package wallet

import (
	"context"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// BatchTotals are one batch's items totalled by result.
type BatchTotals struct {
	BatchID       string
	Currency      money.Currency
	Status        string
	CreatedAt     time.Time
	PaidCount     int
	PaidAmount    money.Amount
	PaidNet       money.Amount
	PaidFee       money.Amount
	FailedCount   int
	FailedAmount  money.Amount
	PendingCount  int
	PendingAmount money.Amount
}

// Reconciliation compares, per currency, what the wallet's tables say with what the journal says.
// Every pair must be equal; OK says whether they are.
type Reconciliation struct {
	Currency money.Currency
	// PaidNet is the sum of paid withdrawals' nets; CashPaidOut is what left platform:cash.
	PaidNet     money.Amount
	CashPaidOut money.Amount
	// PaidFees is the sum of paid withdrawals' fees; FeeIncome is platform:fee_income's balance.
	PaidFees  money.Amount
	FeeIncome money.Amount
	// InFlight is the sum of withdrawals requested and not settled; Withdrawing is the sum of every
	// member's withdrawing balance.
	InFlight    money.Amount
	Withdrawing money.Amount
	OK          bool
}

// PayoutReport is GET /v1/reports/payouts.
type PayoutReport struct {
	From, To        time.Time
	Batches         []BatchTotals
	Reconciliations []Reconciliation
}

// Report totals the batches created in [from, to) and reconciles all payouts with the journal.
func (w *Wallet) Report(ctx context.Context, from, to time.Time) (PayoutReport, error) {
	q := store.New(w.pool)
	rows, err := q.PayoutReport(ctx, sqlc.PayoutReportParams{FromAt: from, ToAt: to})
	if err != nil {
		return PayoutReport{}, err
	}
	rep := PayoutReport{From: from, To: to, Batches: []BatchTotals{}}
	for _, r := range rows {
		c := money.Currency(r.Currency)
		amt := func(d decimal.Decimal) money.Amount { a, _ := money.New(d, c); return a }
		rep.Batches = append(rep.Batches, BatchTotals{BatchID: r.ID, Currency: c, Status: r.Status, CreatedAt: r.CreatedAt,
			PaidCount: int(r.PaidCount), PaidAmount: amt(r.PaidAmount), PaidNet: amt(r.PaidNet), PaidFee: amt(r.PaidFee),
			FailedCount: int(r.FailedCount), FailedAmount: amt(r.FailedAmount),
			PendingCount: int(r.PendingCount), PendingAmount: amt(r.PendingAmount)})
	}
	// The journal's side: platform accounts and every member's withdrawing balance, from the
	// trial balance (cached balances, exact).
	lines, _, err := w.ledger.TrialBalance(ctx, nil)
	if err != nil {
		return PayoutReport{}, err
	}
	recs := map[money.Currency]*Reconciliation{}
	get := func(c money.Currency) *Reconciliation {
		r, ok := recs[c]
		if !ok {
			z := money.Zero(c)
			r = &Reconciliation{Currency: c, PaidNet: z, CashPaidOut: z, PaidFees: z, FeeIncome: z, InFlight: z, Withdrawing: z}
			recs[c] = r
		}
		return r
	}
	add := func(into *money.Amount, d decimal.Decimal) {
		a, err := money.New(into.Decimal().Add(d), into.Currency())
		if err == nil {
			*into = a
		}
	}
	for _, l := range lines {
		if l.Currency == money.PTS {
			continue
		}
		// Normal-side balance: debit minus credit for assets, credit minus debit otherwise.
		bal := l.Credit.Decimal().Sub(l.Debit.Decimal())
		switch {
		case l.Code == ledger.Cash:
			add(&get(l.Currency).CashPaidOut, bal) // cash is credited as it leaves
		case l.Code == ledger.FeeIncome:
			add(&get(l.Currency).FeeIncome, bal)
		case strings.HasPrefix(l.Code, "member:") && strings.HasSuffix(l.Code, ":withdrawing"):
			add(&get(l.Currency).Withdrawing, bal)
		}
	}
	paid, err := q.PayoutPaidTotals(ctx)
	if err != nil {
		return PayoutReport{}, err
	}
	for _, p := range paid {
		r := get(money.Currency(p.Currency))
		add(&r.PaidNet, p.Net)
		add(&r.PaidFees, p.Fee)
	}
	inflight, err := q.WithdrawalInFlightTotals(ctx)
	if err != nil {
		return PayoutReport{}, err
	}
	for _, f := range inflight {
		add(&get(money.Currency(f.Currency)).InFlight, f.Amount)
	}
	for _, c := range money.Currencies() {
		if r, ok := recs[c]; ok {
			r.OK = r.PaidNet.Equal(r.CashPaidOut) && r.PaidFees.Equal(r.FeeIncome) && r.InFlight.Equal(r.Withdrawing)
			rep.Reconciliations = append(rep.Reconciliations, *r)
		}
	}
	return rep, nil
}
