package rebate

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Ratio is a count over a count, with the quotient to four decimals (half-even) for reading; the
// two counts are exact. Rate is nil when the denominator is zero.
type Ratio struct {
	Of   int64   `json:"of"`
	Over int64   `json:"over"`
	Rate *string `json:"rate"`
}

func ratio(of, over int64) Ratio {
	r := Ratio{Of: of, Over: over}
	if over > 0 {
		s := decimal.NewFromInt(of).DivRound(decimal.NewFromInt(over), 8).RoundBank(4).StringFixed(4)
		r.Rate = &s
	}
	return r
}

// LegRewards are one leg's rebates of the period's orders in one currency.
type LegRewards struct {
	Currency   money.Currency `json:"currency"`
	Leg        string         `json:"leg"`
	Granted    money.Amount   `json:"granted"`
	ClawedBack money.Amount   `json:"clawed_back"`
	Net        money.Amount   `json:"net"`
}

// CurrencyTotals are a currency's referred sales and rewards over the period, and the customer
// acquisition cost: net rewards per newly converted customer (half-even to the currency's scale).
type CurrencyTotals struct {
	Currency    money.Currency `json:"currency"`
	Orders      int64          `json:"orders"`
	ReferredGMV money.Amount   `json:"referred_gmv"`
	Refunded    money.Amount   `json:"refunded"`
	Granted     money.Amount   `json:"rewards_granted"`
	ClawedBack  money.Amount   `json:"rewards_clawed_back"`
	Net         money.Amount   `json:"rewards_net"`
	CAC         *money.Amount  `json:"customer_acquisition_cost"`
}

// ProgramReport is the program's analytics for [From, To).
type ProgramReport struct {
	From           time.Time        `json:"from"`
	To             time.Time        `json:"to"`
	Members        int64            `json:"members"`
	NewMembers     int64            `json:"new_members"`
	Participation  Ratio            `json:"participation"`
	Conversion     Ratio            `json:"invitation_conversion"`
	NewlyConverted int64            `json:"newly_converted_customers"`
	FirstOrder     Ratio            `json:"first_order"`
	RepeatPurchase Ratio            `json:"repeat_purchase"`
	Currencies     []CurrencyTotals `json:"currencies"`
	Rewards        []LegRewards     `json:"rewards"`
}

// ProgramAnalytics reads the program's analytics for [from, to) (docs/accounting.md, "Program
// analytics"): members counted by the period's end, new ones and invitees by registration in it,
// sales and rewards by the orders' business time in it.
func (e *Engine) ProgramAnalytics(ctx context.Context, from, to time.Time) (ProgramReport, error) {
	q := store.New(e.pool)
	rep := ProgramReport{From: from, To: to, Currencies: []CurrencyTotals{}, Rewards: []LegRewards{}}
	m, err := q.AnalyticsMembers(ctx, sqlc.AnalyticsMembersParams{FromAt: from, ToAt: to})
	if err != nil {
		return rep, err
	}
	rep.Members, rep.NewMembers, rep.NewlyConverted = m.Members, m.NewMembers, m.NewlyConverted
	rep.Participation = ratio(m.Participants, m.Members)
	rep.Conversion = ratio(m.NewInviteesConverted, m.NewInvitees)
	rep.FirstOrder = ratio(m.ReferredBuyers, m.Referred)
	rep.RepeatPurchase = ratio(m.ReferredRepeatBuyers, m.ReferredBuyers)

	byCur := map[money.Currency]*CurrencyTotals{}
	get := func(c money.Currency) *CurrencyTotals {
		t, ok := byCur[c]
		if !ok {
			z := money.Zero(c)
			t = &CurrencyTotals{Currency: c, ReferredGMV: z, Refunded: z, Granted: z, ClawedBack: z, Net: z}
			byCur[c] = t
		}
		return t
	}
	amt := func(d decimal.Decimal, c money.Currency) money.Amount { a, _ := money.New(d, c); return a }
	gmv, err := q.AnalyticsGMV(ctx, sqlc.AnalyticsGMVParams{FromAt: from, ToAt: to})
	if err != nil {
		return rep, err
	}
	for _, g := range gmv {
		c := money.Currency(g.Currency)
		t := get(c)
		t.Orders, t.ReferredGMV, t.Refunded = g.Orders, amt(g.Gmv, c), amt(g.Refunded, c)
	}
	rewards, err := q.AnalyticsRewards(ctx, sqlc.AnalyticsRewardsParams{FromAt: from, ToAt: to})
	if err != nil {
		return rep, err
	}
	for _, r := range rewards {
		c := money.Currency(r.Currency)
		net := r.Granted.Sub(r.ClawedBack)
		rep.Rewards = append(rep.Rewards, LegRewards{Currency: c, Leg: r.Leg, Granted: amt(r.Granted, c), ClawedBack: amt(r.ClawedBack, c), Net: amt(net, c)})
		t := get(c)
		t.Granted = amt(t.Granted.Decimal().Add(r.Granted), c)
		t.ClawedBack = amt(t.ClawedBack.Decimal().Add(r.ClawedBack), c)
		t.Net = amt(t.Net.Decimal().Add(net), c)
	}
	for _, c := range money.Currencies() {
		t, ok := byCur[c]
		if !ok {
			continue
		}
		if c != money.PTS && rep.NewlyConverted > 0 {
			cac := money.Round(t.Net.Decimal().DivRound(decimal.NewFromInt(rep.NewlyConverted), c.Scale()+8), c, money.RoundHalfEven)
			t.CAC = &cac
		}
		rep.Currencies = append(rep.Currencies, *t)
	}
	return rep, nil
}
