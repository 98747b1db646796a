package rebate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
)

// Balances are a member's balances in one currency.
type Balances struct {
	Currency    money.Currency
	Held        money.Amount
	Available   money.Amount
	Withdrawing money.Amount
	Earned      money.Amount
	PaidOut     money.Amount
}

// MemberBalances reads held, available and withdrawing from the journal's cached balances and earned
// (accrued minus clawed back, all time) from the rebate lots, per currency the member has touched.
func (e *Engine) MemberBalances(ctx context.Context, memberID string) ([]Balances, error) {
	if _, err := e.GetMember(ctx, memberID); err != nil {
		return nil, err
	}
	byCur := map[money.Currency]*Balances{}
	get := func(c money.Currency) *Balances {
		b, ok := byCur[c]
		if !ok {
			z := money.Zero(c)
			b = &Balances{Currency: c, Held: z, Available: z, Withdrawing: z, Earned: z, PaidOut: z}
			byCur[c] = b
		}
		return b
	}
	for _, bucket := range []string{"held", "available", "withdrawing"} {
		bs, err := e.ledger.Balances(ctx, ledger.MemberAccount(memberID, bucket), nil)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			row := get(b.Currency)
			switch bucket {
			case "held":
				row.Held = b.Balance
			case "available":
				row.Available = b.Balance
			case "withdrawing":
				row.Withdrawing = b.Balance
			}
		}
	}
	earned, err := store.New(e.pool).LotEarnedByMember(ctx, memberID)
	if err != nil {
		return nil, err
	}
	for _, r := range earned {
		a, err := money.New(r.Earned, money.Currency(r.Currency))
		if err != nil {
			return nil, err
		}
		get(a.Currency()).Earned = a
	}
	out := make([]Balances, 0, len(byCur))
	for _, b := range byCur {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out, nil
}

// LotView is one (beneficiary, leg) of an order's waterfall.
type LotView struct {
	MemberID       string
	Leg            string
	Accrued        money.Amount
	ClawedBack     money.Amount
	Released       money.Amount
	ProgramVersion int64
	Upline         []string
}

// OrderView is an order's rebate waterfall.
type OrderView struct {
	OrderID        string
	MemberID       string
	Amount         money.Amount
	Refunded       money.Amount
	Status         string
	OccurredAt     time.Time
	ReleaseAt      time.Time
	ReleasedAt     *time.Time
	ProgramVersion int64
	Upline         []string
	Lots           []LotView
	Anomalies      []string
}

// Order reads an order's waterfall.
func (e *Engine) Order(ctx context.Context, orderID string) (OrderView, error) {
	q := store.New(e.pool)
	o, err := q.OrderGet(ctx, orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return OrderView{}, fmt.Errorf("%w: order %q", ErrNotFound, orderID)
	}
	if err != nil {
		return OrderView{}, err
	}
	cur := money.Currency(o.Currency)
	amt, _ := money.New(o.Amount, cur)
	ref, _ := money.New(o.Refunded, cur)
	v := OrderView{OrderID: o.OrderID, MemberID: o.MemberID, Amount: amt, Refunded: ref, OccurredAt: o.OccurredAt,
		ReleaseAt: o.ReleaseAt, ReleasedAt: o.ReleasedAt, ProgramVersion: o.ProgramVersion, Upline: o.Upline}
	switch {
	case o.Refunded.Equal(o.Amount):
		v.Status = "refunded"
	case o.Refunded.IsPositive():
		v.Status = "partially_refunded"
	default:
		v.Status = "paid"
	}
	if o.ReleasedAt != nil {
		v.Status += ",released"
	} else {
		v.Status += ",held"
	}
	if o.ExcessRefunded.IsPositive() {
		v.Anomalies = append(v.Anomalies, fmt.Sprintf("refunds that arrived before the order exceeded it by %s %s; the excess was not clawed back", o.ExcessRefunded, cur))
	}
	lots, err := q.LotListByOrder(ctx, orderID)
	if err != nil {
		return OrderView{}, err
	}
	for _, l := range lots {
		c := money.Currency(l.Currency)
		acc, _ := money.New(l.Amount, c)
		cb, _ := money.New(l.ClawedBack, c)
		rel, _ := money.New(l.Released, c)
		v.Lots = append(v.Lots, LotView{MemberID: l.BeneficiaryID, Leg: l.Leg, Accrued: acc, ClawedBack: cb, Released: rel,
			ProgramVersion: l.ProgramVersion, Upline: l.Upline})
	}
	return v, nil
}
