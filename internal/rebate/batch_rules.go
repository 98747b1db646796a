package rebate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// lot is one (beneficiary, leg) of an accrual. The functions below apply the rules of
// docs/accounting.md to one event at a time, on the batch's copy of the rows it read.
type lot struct {
	beneficiary string
	leg         string
	amount      money.Amount
}

// orderPaid applies rules 1 to 6 and 9 of docs/accounting.md. Every check comes before the first
// change to the batch's state, so a refused event leaves nothing behind.
func (b *batch) orderPaid(ev parsedEvent, w *eventWork) error {
	d := ev.paid
	cur, err := money.ParseCurrency(d.Currency)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrValidation, err)
	}
	x, err := money.Parse(d.Amount, cur)
	if err != nil {
		return fmt.Errorf("%w: data.amount: %v", ErrValidation, err)
	}
	if !x.IsPositive() {
		return fmt.Errorf("%w: data.amount must be positive", ErrValidation)
	}
	p, err := b.programAt(ev.OccurredAt)
	if err != nil {
		return err
	}
	r := p.Rules
	if cur != r.Currency {
		return fmt.Errorf("%w: the program in force pays in %s, the order is in %s", ErrUnsupportedCurrency, r.Currency, cur)
	}
	if _, taken := b.orders[d.OrderID]; taken {
		return fmt.Errorf("%w: order %q was paid by another event", ErrIdempotencyConflict, d.OrderID)
	}
	buyer, ok := b.members[d.MemberID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownMember, d.MemberID)
	}
	upline := buyer.upline
	if len(upline) > len(r.LevelRates) {
		upline = upline[:len(r.LevelRates)]
	}
	var u1 *memberState
	if len(upline) > 0 {
		if u1 = b.members[upline[0]]; u1 == nil {
			return fmt.Errorf("referrer %s of %s was not locked", upline[0], d.MemberID)
		}
	}

	buyer.paid++
	buyer.dirty = true
	firstOrder := buyer.paid == 1
	var lots []lot
	if u1 != nil {
		if firstOrder {
			u1.converted++
			u1.dirty = true
		}
		converted := int(u1.converted)
		remaining := x.MulRate(r.MaxRebateRatio, money.RoundDown)
		for i, member := range upline {
			rate := r.LevelRates[i]
			if i == 0 {
				rate = r.Level1Rate(converted)
			}
			leg := x.MulRate(rate, r.Rounding)
			if leg.Cmp(remaining) > 0 {
				leg = remaining
			}
			remaining, _ = remaining.Sub(leg)
			if leg.IsPositive() {
				lots = append(lots, lot{member, fmt.Sprintf("level%d", i+1), leg})
			}
		}
		if firstOrder && r.FirstOrderBonus.IsPositive() {
			lots = append(lots, lot{u1.id, "first_order_bonus", r.FirstOrderBonus})
		}
		if firstOrder {
			for _, m := range r.Milestones {
				if m.Converted == converted && m.Bonus.IsPositive() {
					lots = append(lots, lot{u1.id, "milestone", m.Bonus})
				}
			}
		}
		pts := money.Round(x.Decimal().Mul(r.PointsPerUnit), money.PTS, money.RoundDown)
		if pts.IsPositive() {
			lots = append(lots, lot{u1.id, "points", pts})
		}
	}

	releaseAt := ev.OccurredAt.Add(r.HoldPeriod)
	o := &orderState{Order: sqlc.Order{OrderID: d.OrderID, EventID: ev.ID, MemberID: d.MemberID, Amount: x.Decimal(),
		Currency: string(cur), OccurredAt: ev.OccurredAt, ProgramVersion: p.Version, Upline: nonNil(buyer.upline),
		ReleaseAt: releaseAt, FirstOrder: firstOrder}, isNew: true}
	b.orders[d.OrderID] = o
	b.newOrders = append(b.newOrders, o)
	w.res.Status = Applied
	if len(lots) > 0 {
		req := ledger.EntryRequest{Key: "accrual:" + d.OrderID, Kind: "accrual", OccurredAt: ev.OccurredAt,
			Metadata: map[string]any{"order_id": d.OrderID, "event_id": ev.ID, "program_version": p.Version, "upline": upline}}
		totals := map[money.Currency]money.Amount{}
		for _, l := range lots {
			req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount(l.beneficiary, "held"), Side: ledger.Credit, Amount: l.amount})
			t, ok := totals[l.amount.Currency()]
			if !ok {
				t = money.Zero(l.amount.Currency())
			}
			totals[l.amount.Currency()], _ = t.Add(l.amount)
			o.lots = append(o.lots, &lotState{beneficiary: l.beneficiary, leg: l.leg, currency: string(l.amount.Currency()),
				amount: l.amount.Decimal(), upline: nonNil(upline), version: p.Version, isNew: true})
			w.res.Rebates = append(w.res.Rebates, Rebate{MemberID: l.beneficiary, Leg: l.leg, Amount: l.amount,
				Currency: l.amount.Currency(), ReleaseAt: releaseAt})
		}
		for _, c := range []money.Currency{r.Currency, money.PTS} {
			if t, ok := totals[c]; ok {
				req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: t})
			}
		}
		o.accrual = b.newEntry(req)
		w.entries = append(w.entries, o.accrual)
		accrual, rebates := o.accrual, w.res.Rebates
		b.notes = append(b.notes, func() notify.Note {
			return notify.Note{Type: notify.RebateAccrued, Data: AccruedNote{EventID: ev.ID, OrderID: d.OrderID,
				MemberID: d.MemberID, Amount: x, Currency: cur, EntryID: accrual.id, Rebates: rebates}}
		})
		slices.SortFunc(o.lots, func(a, b *lotState) int {
			return cmp.Or(strings.Compare(a.beneficiary, b.beneficiary), strings.Compare(a.leg, b.leg))
		})
		b.releases = append(b.releases, Release{OrderID: d.OrderID, At: releaseAt})
	}

	// Refunds that arrived before their order are applied now, in arrival order.
	for _, pr := range b.parked[d.OrderID] {
		amt, err := money.New(pr.amount, cur)
		if err != nil {
			// A parked amount finer than the order's currency cannot be clawed exactly: keep it as an anomaly.
			amt = money.Zero(cur)
		}
		pe, err := b.applyRefund(o, pr, amt, ev.OccurredAt, true)
		if err != nil {
			return abort{fmt.Errorf("apply parked refund %s: %w", pr.id, err)}
		}
		if !pr.isNew {
			b.applied = append(b.applied, pr)
		}
		if pe != nil {
			w.entries = append(w.entries, pe)
		}
	}
	delete(b.parked, d.OrderID)
	return nil
}

func (b *batch) orderRefunded(ev parsedEvent, w *eventWork) error {
	d := ev.refunded
	if b.refunds[d.RefundID] {
		return fmt.Errorf("%w: refund %q was sent by another event", ErrIdempotencyConflict, d.RefundID)
	}
	o := b.orders[d.OrderID]
	var cur money.Currency
	if o == nil {
		p, err := b.programAt(ev.OccurredAt)
		if err != nil {
			return err
		}
		cur = p.Rules.Currency
	} else {
		cur = money.Currency(o.Currency)
	}
	amt, err := money.Parse(d.Amount, cur)
	if err != nil {
		return fmt.Errorf("%w: data.amount: %v", ErrValidation, err)
	}
	if !amt.IsPositive() {
		return fmt.Errorf("%w: data.amount must be positive", ErrValidation)
	}
	if o != nil {
		if room := o.Amount.Sub(o.Refunded); amt.Decimal().GreaterThan(room) {
			return fmt.Errorf("%w: order %s is %s, already refunded %s, this refund %s", ErrRefundExceedsOrder,
				o.OrderID, o.Amount, o.Refunded, amt.Decimal())
		}
	}

	b.refunds[d.RefundID] = true
	r := &refundState{id: d.RefundID, eventID: ev.ID, orderID: d.OrderID, amount: amt.Decimal(), status: "parked", isNew: true}
	b.newRefunds = append(b.newRefunds, r)
	if o == nil {
		b.parked[d.OrderID] = append(b.parked[d.OrderID], r)
		w.res.Status = Parked
		return nil
	}
	w.res.Status = Applied
	pe, err := b.applyRefund(o, r, amt, ev.OccurredAt, false)
	if err != nil {
		return abort{err}
	}
	if pe != nil {
		w.entries = append(w.entries, pe)
	}
	return nil
}

// applyRefund claws back, proportionally and cumulatively, what the refund takes away (rule 8). A
// refund that arrived before its order (late) is applied up to the order's amount and the excess is
// recorded as an anomaly; a live refund beyond the order was refused before this is called.
func (b *batch) applyRefund(o *orderState, r *refundState, amt money.Amount, at time.Time, late bool) (*pendingEntry, error) {
	x := o.Amount
	applied := amt.Decimal()
	excess := r.amount.Sub(applied)
	if room := x.Sub(o.Refunded); applied.GreaterThan(room) {
		if !late {
			return nil, fmt.Errorf("%w: order %s is %s, already refunded %s, this refund %s", ErrRefundExceedsOrder,
				o.OrderID, x, o.Refunded, applied)
		}
		excess = excess.Add(applied.Sub(room))
		applied = room
	}
	z := o.Refunded.Add(applied)
	from := "held"
	if o.ReleasedAt != nil {
		from = "available"
	}
	req := ledger.EntryRequest{Key: "refund:" + r.id, Kind: "clawback", OccurredAt: at,
		Metadata: map[string]any{"order_id": o.OrderID, "refund_id": r.id, "refunded_total": z.String()}}
	if o.AccrualEntryID != nil {
		req.RefersTo = *o.AccrualEntryID
	}
	totals := map[string]decimal.Decimal{}
	var clawed []Clawback
	for _, l := range o.lots {
		target := l.clawed
		switch l.leg {
		case "level1", "level2", "level3", "points":
			// kept = round_down(amount × (X − Z) / X), computed exactly: QuoRem truncates the
			// quotient at the currency's scale, where Div would round at 16 digits first.
			kept, _ := l.amount.Mul(x.Sub(z)).QuoRem(x, money.Currency(l.currency).Scale())
			if kept.LessThan(l.amount.Sub(l.clawed)) {
				target = l.amount.Sub(kept)
			}
		case "first_order_bonus":
			if z.Equal(x) {
				target = l.amount
			}
		}
		delta := target.Sub(l.clawed)
		if !delta.IsPositive() {
			continue
		}
		a, err := money.New(delta, money.Currency(l.currency))
		if err != nil {
			return nil, err
		}
		acct := ledger.MemberAccount(l.beneficiary, from)
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: acct, Side: ledger.Debit, Amount: a})
		if from == "available" {
			req.AllowOverdraft = append(req.AllowOverdraft, acct)
			if l.leg == "points" {
				// The released points lot shrinks too, as far as its points are unspent.
				b.pointClaws = append(b.pointClaws, sqlc.PointsLotClawParams{MemberID: l.beneficiary, OrderID: o.OrderID, Points: delta.IntPart()})
			}
		}
		totals[l.currency] = totals[l.currency].Add(delta)
		clawed = append(clawed, Clawback{MemberID: l.beneficiary, Leg: l.leg, Amount: a, Currency: a.Currency(), From: from})
		l.clawed = target
		l.dirty = true
	}
	o.Refunded = z
	o.ExcessRefunded = o.ExcessRefunded.Add(excess)
	o.dirty = true
	r.status = "applied"
	if len(req.Postings) == 0 {
		return nil, nil
	}
	for _, c := range []string{o.Currency, string(money.PTS)} {
		if t, ok := totals[c]; ok {
			a, _ := money.New(t, money.Currency(c))
			req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Credit, Amount: a})
		}
	}
	r.entry = b.newEntry(req)
	r.entry.refersTo = o.accrual
	entry, refund := r.entry, *r
	b.notes = append(b.notes, func() notify.Note {
		return notify.Note{Type: notify.RebateClawedBack, Data: ClawedBackNote{EventID: refund.eventID, OrderID: o.OrderID,
			RefundID: refund.id, RefundAmount: refund.amount.String(), EntryID: entry.id, ClawedBack: clawed}}
	})
	return r.entry, nil
}
