package audit

import (
	"context"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// IncomeLine is the program's cost in one currency over a period, from the platform accounts'
// postings recorded in it.
type IncomeLine struct {
	Currency money.Currency `json:"currency"`
	// RebatesGranted are debits to platform:rebate_expense (accruals, bonuses, points, sign-up
	// rewards); ClawedBack its credits (refunds).
	RebatesGranted money.Amount `json:"rebates_granted"`
	ClawedBack     money.Amount `json:"clawed_back"`
	// PointsRedeemed are credits to platform:points_redeemed (points spent in the shop, PTS);
	// PointsExpired credits to platform:points_expired (breakage, PTS).
	PointsRedeemed money.Amount `json:"points_redeemed"`
	PointsExpired  money.Amount `json:"points_expired"`
	// WithdrawalFees are platform:fee_income's net credits.
	WithdrawalFees money.Amount `json:"withdrawal_fees"`
	// PaidOut is what left platform:cash (paid withdrawals' nets).
	PaidOut money.Amount `json:"paid_out"`
	// NetCost = granted - clawed back - fees - expired points: what the program cost the platform.
	NetCost money.Amount `json:"net_cost"`
}

// IncomeStatement is the program's cost per currency for recorded_at in [from, to); currency ""
// means every currency.
func IncomeStatement(ctx context.Context, db store.DBTX, from, to time.Time, currency string) ([]IncomeLine, error) {
	rows, err := store.New(db).PlatformMovements(ctx, sqlc.PlatformMovementsParams{FromAt: from, ToAt: to, Currency: currency})
	if err != nil {
		return nil, err
	}
	type key struct{ code, side string }
	byCur := map[money.Currency]map[key]decimal.Decimal{}
	for _, r := range rows {
		c := money.Currency(r.Currency)
		if byCur[c] == nil {
			byCur[c] = map[key]decimal.Decimal{}
		}
		byCur[c][key{r.Code, r.Side}] = r.Total
	}
	var out []IncomeLine
	for c, m := range byCur {
		amt := func(d decimal.Decimal) money.Amount { a, _ := money.New(d, c); return a }
		get := func(code, side string) decimal.Decimal { return m[key{code, side}] }
		granted, clawed := get(ledger.RebateExpense, "debit"), get(ledger.RebateExpense, "credit")
		fees := get(ledger.FeeIncome, "credit").Sub(get(ledger.FeeIncome, "debit"))
		expired := get(ledger.PointsExpired, "credit").Sub(get(ledger.PointsExpired, "debit"))
		out = append(out, IncomeLine{Currency: c, RebatesGranted: amt(granted), ClawedBack: amt(clawed),
			PointsRedeemed: amt(get(ledger.PointsRedeemed, "credit").Sub(get(ledger.PointsRedeemed, "debit"))),
			PointsExpired:  amt(expired), WithdrawalFees: amt(fees),
			PaidOut: amt(get(ledger.Cash, "credit").Sub(get(ledger.Cash, "debit"))),
			NetCost: amt(granted.Sub(clawed).Sub(fees).Sub(expired))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out, nil
}
