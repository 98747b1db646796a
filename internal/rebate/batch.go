package rebate

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Outcome is one event's answer in a batch: a result, or the error that refused the event (and
// changed nothing).
type Outcome struct {
	Result EventResult
	Err    error
}

// errRace marks a transaction that lost a race the batch's reads could not see (another
// transaction committed the same order, refund or accrual after they were read). The batch is run
// again, and the second run sees the winner and answers accordingly.
var errRace = errors.New("a concurrent transaction wrote the same order or refund")

// abort is an error after an event began to change the batch's state: the whole transaction must
// roll back rather than the event alone be refused.
type abort struct{ error }

// maxRaceAttempts bounds the re-runs after a lost race.
const maxRaceAttempts = 5

// Apply applies one event exactly once. Everything it changes (the event record, orders, lots,
// journal entries, the release job) commits together or not at all; an error changes nothing.
// With Coalesce on, it shares a transaction with the events that queued beside it.
func (e *Engine) Apply(ctx context.Context, ev Event) (EventResult, error) {
	if c := e.coalesce.Load(); c != nil {
		if o, ok := c.submit(ctx, ev); ok {
			return o.Result, o.Err
		}
	}
	out := e.ApplyBatch(ctx, []Event{ev})
	return out[0].Result, out[0].Err
}

// ApplyBatch applies events in order, each exactly as Apply would, and answers each on its own: a
// refused event changes nothing and does not stop the others. The events are applied in one
// transaction with a fixed number of statements (a handful of reads that lock every row the batch
// will change, sorted, then one bulk write per table), so a batch costs about what one event costs
// and concurrent batches cannot deadlock. An event id that comes back within the batch starts a new
// transaction, so the repeat sees the first one committed and replays it.
func (e *Engine) ApplyBatch(ctx context.Context, evs []Event) []Outcome {
	out := make([]Outcome, len(evs))
	parsed := make([]parsedEvent, len(evs))
	var chunk []int
	seen := map[string]bool{}
	flush := func() {
		if len(chunk) > 0 {
			e.applyChunk(ctx, parsed, chunk, out)
		}
		chunk = nil
		clear(seen)
	}
	for i, ev := range evs {
		p, err := parse(ev)
		if err != nil {
			out[i].Err = err
			continue
		}
		parsed[i] = p
		if seen[p.ID] {
			flush()
		}
		seen[p.ID] = true
		chunk = append(chunk, i)
	}
	flush()
	return out
}

func (e *Engine) applyChunk(ctx context.Context, parsed []parsedEvent, idx []int, out []Outcome) {
	var err error
	for attempt := 1; attempt <= maxRaceAttempts; attempt++ {
		err = e.ledger.Transact(ctx, func(tx pgx.Tx) error {
			for _, i := range idx {
				out[i] = Outcome{}
			}
			b := &batch{e: e, tx: tx, q: store.New(tx)}
			return b.run(ctx, parsed, idx, out)
		})
		if !errors.Is(err, errRace) {
			break
		}
	}
	if err != nil {
		for _, i := range idx {
			out[i] = Outcome{Err: err}
		}
	}
}

// batch is the state of one transaction's events: the rows it read and locked, and what the events
// applied so far did to them. Writes are collected and sent at the end, one statement per table.
type batch struct {
	e  *Engine
	tx pgx.Tx
	q  *store.Queries

	programs []Program // the versions in force at the events' instants, newest first
	members  map[string]*memberState
	orders   map[string]*orderState
	refunds  map[string]bool // refund ids taken, before or in this batch
	parked   map[string][]*refundState

	entries    []*pendingEntry
	newOrders  []*orderState
	newRefunds []*refundState
	applied    []*refundState // refunds parked before this batch and applied in it
	pointClaws []sqlc.PointsLotClawParams
	releases   []Release
}

type memberState struct {
	id        string
	upline    []string
	paid      int32
	converted int32
	dirty     bool
}

type orderState struct {
	sqlc.Order
	accrual *pendingEntry // the accrual written by this batch, if the order is new
	lots    []*lotState   // sorted by (beneficiary, leg), as LotListByOrders returns them
	isNew   bool
	dirty   bool
}

type lotState struct {
	beneficiary, leg, currency string
	amount, clawed             decimal.Decimal
	upline                     []string
	version                    int64
	isNew, dirty               bool
}

type refundState struct {
	id, eventID, orderID string
	amount               decimal.Decimal
	status               string
	entry                *pendingEntry
	isNew                bool
}

// pendingEntry is a journal entry the batch will write; refersTo names another entry of the batch
// whose id is not known yet.
type pendingEntry struct {
	req      ledger.EntryRequest
	refersTo *pendingEntry
	id       int64
}

// eventWork is what one event's apply produced, until the entry ids are known.
type eventWork struct {
	res     EventResult
	entries []*pendingEntry
}

func (b *batch) run(ctx context.Context, parsed []parsedEvent, idx []int, out []Outcome) error {
	sent, err := b.load(ctx, parsed, idx)
	if err != nil {
		return err
	}
	live, err := b.claim(sent, parsed, idx, out)
	if err != nil || len(live) == 0 {
		return err
	}
	work := make(map[int]*eventWork, len(live))
	for _, i := range live {
		w := &eventWork{res: EventResult{EventID: parsed[i].ID, EntryIDs: []int64{}, Rebates: []Rebate{}}}
		var err error
		switch parsed[i].Type {
		case OrderPaid:
			err = b.orderPaid(parsed[i], w)
		case OrderRefunded:
			err = b.orderRefunded(parsed[i], w)
		}
		var fatal abort
		if errors.As(err, &fatal) {
			return fatal.error
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		work[i] = w
	}
	jw := b.e.ledger.NewWriter(b.tx)
	if err := b.writeEntries(ctx, jw); err != nil {
		return err
	}
	// The rest goes in one round trip: the events with their answers, then the rows of every table.
	pl := store.NewPipeline(b.tx)
	q := pl.Queries()
	var evs sqlc.EventInsertManyParams
	for _, i := range live {
		w, ok := work[i]
		if !ok {
			continue
		}
		for _, pe := range w.entries {
			w.res.EntryIDs = append(w.res.EntryIDs, pe.id)
		}
		body, _ := json.Marshal(w.res)
		evs.Ids = append(evs.Ids, w.res.EventID)
		evs.Types = append(evs.Types, parsed[i].Type)
		evs.RequestHashes = append(evs.RequestHashes, parsed[i].hash[:])
		evs.StatusCodes = append(evs.StatusCodes, int32(w.res.StatusCode))
		evs.Responses = append(evs.Responses, body)
		out[i].Result = w.res
	}
	if len(evs.Ids) > 0 {
		_ = q.EventInsertMany(ctx, evs) // first: orders and refunds name their event
	}
	b.queueOrders(ctx, q)
	b.queueRefunds(ctx, q)
	b.queueMembers(ctx, q)
	if err := pl.Send(ctx); err != nil {
		return raceOr(fmt.Errorf("record the batch: %w", err))
	}
	for _, pc := range b.pointClaws {
		if _, err := b.q.PointsLotClaw(ctx, pc); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("claw points lot: %w", err)
		}
	}
	if len(b.releases) > 0 {
		if b.e.schedule == nil {
			return errors.New("rebate engine has no release scheduler")
		}
		if err := b.e.schedule(ctx, b.tx, b.releases); err != nil {
			return fmt.Errorf("schedule releases: %w", err)
		}
	}
	// Balances last: the rows of popular referrers' accounts are the most contended locks a batch
	// takes, so they are held only for this statement and the commit.
	return jw.Flush(ctx)
}

// claim sorts the events into those sent before (the same body answers its stored response, a
// different body is a conflict) and those to apply, which it returns. They are recorded with their
// answers at the end; a concurrent duplicate then collides with the first on a unique key and the
// batch runs again.
func (b *batch) claim(rows []sqlc.EventListByIDsRow, parsed []parsedEvent, idx []int, out []Outcome) ([]int, error) {
	byID := make(map[string]sqlc.EventListByIDsRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	var live []int
	for _, i := range idx {
		prev, seen := byID[parsed[i].ID]
		switch {
		case !seen:
			live = append(live, i)
		case !bytes.Equal(prev.RequestHash, parsed[i].hash[:]):
			out[i].Err = fmt.Errorf("%w: event %q was sent before with a different body", ErrIdempotencyConflict, parsed[i].ID)
		default:
			var res EventResult
			if err := json.Unmarshal(prev.Response, &res); err != nil {
				return nil, fmt.Errorf("stored answer of event %q: %w", parsed[i].ID, err)
			}
			res.StatusCode, res.Replayed = int(prev.StatusCode), true
			out[i].Result = res
		}
	}
	return live, nil
}

// load reads, in one round trip, every row the events can change, locking them in a fixed order
// (orders, then members, each sorted), and last the events sent before: a concurrent duplicate of
// an event here locks the same order or buyer, so once those locks are ours it has committed and is
// seen as sent. (A parked refund locks nothing; its duplicate collides on the refund id instead.)
func (b *batch) load(ctx context.Context, parsed []parsedEvent, idx []int) ([]sqlc.EventListByIDsRow, error) {
	var ats []time.Time
	var ids, orderIDs, buyers, refundIDs, refundOrders, paidOrders []string
	for _, i := range idx {
		p := parsed[i]
		ids = append(ids, p.ID)
		ats = append(ats, p.OccurredAt)
		switch p.Type {
		case OrderPaid:
			orderIDs = append(orderIDs, p.paid.OrderID)
			paidOrders = append(paidOrders, p.paid.OrderID)
			buyers = append(buyers, p.paid.MemberID)
		case OrderRefunded:
			orderIDs = append(orderIDs, p.refunded.OrderID)
			refundOrders = append(refundOrders, p.refunded.OrderID)
			refundIDs = append(refundIDs, p.refunded.RefundID)
		}
	}
	var (
		progs   []sqlc.ProgramInForceAtRow
		orders  []sqlc.Order
		lots    []sqlc.RebateLot
		parked  []sqlc.RefundListParkedByOrdersRow
		taken   []string
		members []sqlc.MemberLockBuyersRow
		events  []sqlc.EventListByIDsRow
	)
	steps := []func(q *store.Queries) error{
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		func(q *store.Queries) (err error) { progs, err = q.ProgramInForceAt(ctx, ats); return err },
		func(q *store.Queries) (err error) { orders, err = q.OrderLockMany(ctx, orderIDs); return err },
	}
	if len(refundIDs) > 0 {
		steps = append(steps,
			func(q *store.Queries) (err error) { lots, err = q.LotListByOrders(ctx, refundOrders); return err },
			func(q *store.Queries) (err error) { taken, err = q.RefundListIDs(ctx, refundIDs); return err })
	}
	if len(buyers) > 0 {
		steps = append(steps,
			func(q *store.Queries) (err error) {
				parked, err = q.RefundListParkedByOrders(ctx, paidOrders)
				return err
			},
			func(q *store.Queries) (err error) { members, err = q.MemberLockBuyers(ctx, buyers); return err })
	}
	steps = append(steps, func(q *store.Queries) (err error) { events, err = q.EventListByIDs(ctx, ids); return err })
	if err := store.Pipelined(ctx, b.tx, steps...); err != nil {
		return nil, fmt.Errorf("read the batch's rows: %w", err)
	}

	for _, row := range progs {
		p, err := programFromRow(row.Version, row.EffectiveAt, row.Rules)
		if err != nil {
			return nil, err
		}
		b.programs = append(b.programs, p)
	}
	b.orders = map[string]*orderState{}
	for _, row := range orders {
		b.orders[row.OrderID] = &orderState{Order: row}
	}
	for _, l := range lots {
		if o := b.orders[l.OrderID]; o != nil {
			o.lots = append(o.lots, &lotState{beneficiary: l.BeneficiaryID, leg: l.Leg, currency: l.Currency,
				amount: l.Amount, clawed: l.ClawedBack, upline: l.Upline, version: l.ProgramVersion})
		}
	}
	b.parked = map[string][]*refundState{}
	for _, r := range parked {
		b.parked[r.OrderID] = append(b.parked[r.OrderID], &refundState{id: r.RefundID, eventID: r.EventID,
			orderID: r.OrderID, amount: r.Amount, status: r.Status})
	}
	b.refunds = map[string]bool{}
	for _, id := range taken {
		b.refunds[id] = true
	}
	b.members = map[string]*memberState{}
	for _, m := range members {
		b.members[m.ID] = &memberState{id: m.ID, upline: m.Upline, paid: m.PaidOrders, converted: m.ConvertedInvitees}
	}
	return events, nil
}

// programAt is the version in force at an instant, among those load read.
func (b *batch) programAt(at time.Time) (Program, error) {
	at = at.Truncate(time.Microsecond)
	for _, p := range b.programs {
		if !p.EffectiveAt.After(at) {
			return p, nil
		}
	}
	return Program{}, fmt.Errorf("%w: no program is in force at %s", ErrValidation, at.Format(time.RFC3339))
}

func (b *batch) newEntry(req ledger.EntryRequest) *pendingEntry {
	pe := &pendingEntry{req: req}
	b.entries = append(b.entries, pe)
	return pe
}

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
				rate = r.level1Rate(converted)
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
		ReleaseAt: releaseAt}, isNew: true}
	b.orders[d.OrderID] = o
	b.newOrders = append(b.newOrders, o)
	w.res.StatusCode, w.res.Status = http.StatusCreated, "applied"
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
		w.res.StatusCode, w.res.Status = http.StatusAccepted, "parked"
		return nil
	}
	w.res.StatusCode, w.res.Status = http.StatusCreated, "applied"
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
	return r.entry, nil
}

// writeEntries writes the batch's journal entries (those that refer to an accrual of this batch in
// a second step, once its id is known); their balances wait for the writer's Flush.
func (b *batch) writeEntries(ctx context.Context, jw *ledger.Writer) error {
	var first, second []*pendingEntry
	for _, pe := range b.entries {
		if pe.refersTo != nil {
			second = append(second, pe)
		} else {
			first = append(first, pe)
		}
	}
	for _, step := range [][]*pendingEntry{first, second} {
		if len(step) == 0 {
			continue
		}
		reqs := make([]ledger.EntryRequest, len(step))
		for i, pe := range step {
			reqs[i] = pe.req
			if pe.refersTo != nil {
				reqs[i].RefersTo = pe.refersTo.id
			}
		}
		written, err := jw.Add(ctx, reqs)
		if errors.Is(err, ledger.ErrIdempotencyConflict) {
			return fmt.Errorf("%w: %w", errRace, err)
		}
		if err != nil {
			return err
		}
		for i, en := range written {
			if en.Replayed {
				// The reads saw no such order or refund, yet its entry exists: it committed since.
				return fmt.Errorf("%w: entry %s", errRace, en.Key)
			}
			step[i].id = en.ID
		}
	}
	return nil
}

// raceOr turns a unique violation (an order or refund id written by a concurrent transaction since
// the batch read it) into errRace.
func raceOr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %w", errRace, err)
	}
	return err
}

func (b *batch) queueOrders(ctx context.Context, q *store.Queries) {
	var no sqlc.OrderInsertManyParams
	var nl sqlc.LotInsertManyOrdersParams
	var uo sqlc.OrderSetRefundedManyParams
	var ul sqlc.LotSetClawedBackManyParams
	for _, o := range b.newOrders {
		var accrual int64
		if o.accrual != nil {
			accrual = o.accrual.id
		}
		no.OrderIds = append(no.OrderIds, o.OrderID)
		no.EventIds = append(no.EventIds, o.EventID)
		no.MemberIds = append(no.MemberIds, o.MemberID)
		no.Amounts = append(no.Amounts, o.Amount)
		no.Currencies = append(no.Currencies, o.Currency)
		no.OccurredAts = append(no.OccurredAts, o.OccurredAt)
		no.ProgramVersions = append(no.ProgramVersions, o.ProgramVersion)
		no.Uplines = append(no.Uplines, strings.Join(o.Upline, ","))
		no.ReleaseAts = append(no.ReleaseAts, o.ReleaseAt)
		no.AccrualEntryIds = append(no.AccrualEntryIds, accrual)
		no.Refundeds = append(no.Refundeds, o.Refunded)
		no.ExcessRefundeds = append(no.ExcessRefundeds, o.ExcessRefunded)
	}
	for _, o := range b.orders {
		if !o.isNew && o.dirty {
			uo.OrderIds = append(uo.OrderIds, o.OrderID)
			uo.Refundeds = append(uo.Refundeds, o.Refunded)
			uo.ExcessRefundeds = append(uo.ExcessRefundeds, o.ExcessRefunded)
		}
		for _, l := range o.lots {
			switch {
			case l.isNew:
				nl.OrderIds = append(nl.OrderIds, o.OrderID)
				nl.BeneficiaryIds = append(nl.BeneficiaryIds, l.beneficiary)
				nl.Legs = append(nl.Legs, l.leg)
				nl.Currencies = append(nl.Currencies, l.currency)
				nl.Amounts = append(nl.Amounts, l.amount)
				nl.ClawedBacks = append(nl.ClawedBacks, l.clawed)
				nl.ProgramVersions = append(nl.ProgramVersions, l.version)
				nl.Uplines = append(nl.Uplines, strings.Join(l.upline, ","))
			case l.dirty:
				ul.OrderIds = append(ul.OrderIds, o.OrderID)
				ul.BeneficiaryIds = append(ul.BeneficiaryIds, l.beneficiary)
				ul.Legs = append(ul.Legs, l.leg)
				ul.ClawedBacks = append(ul.ClawedBacks, l.clawed)
			}
		}
	}
	if len(no.OrderIds) > 0 {
		_ = q.OrderInsertMany(ctx, no)
	}
	if len(nl.OrderIds) > 0 {
		_ = q.LotInsertManyOrders(ctx, nl)
	}
	if len(uo.OrderIds) > 0 {
		_ = q.OrderSetRefundedMany(ctx, uo)
	}
	if len(ul.OrderIds) > 0 {
		_ = q.LotSetClawedBackMany(ctx, ul)
	}
}

func entryID(pe *pendingEntry) int64 {
	if pe == nil {
		return 0
	}
	return pe.id
}

func (b *batch) queueRefunds(ctx context.Context, q *store.Queries) {
	var nr sqlc.RefundInsertManyParams
	for _, r := range b.newRefunds {
		nr.RefundIds = append(nr.RefundIds, r.id)
		nr.EventIds = append(nr.EventIds, r.eventID)
		nr.OrderIds = append(nr.OrderIds, r.orderID)
		nr.Amounts = append(nr.Amounts, r.amount)
		nr.Statuses = append(nr.Statuses, r.status)
		nr.EntryIds = append(nr.EntryIds, entryID(r.entry))
	}
	if len(nr.RefundIds) > 0 {
		_ = q.RefundInsertMany(ctx, nr)
	}
	var ur sqlc.RefundSetAppliedManyParams
	for _, r := range b.applied {
		ur.RefundIds = append(ur.RefundIds, r.id)
		ur.EntryIds = append(ur.EntryIds, entryID(r.entry))
	}
	if len(ur.RefundIds) > 0 {
		_ = q.RefundSetAppliedMany(ctx, ur)
	}
}

func (b *batch) queueMembers(ctx context.Context, q *store.Queries) {
	var p sqlc.MemberSetCountersManyParams
	for _, m := range b.members {
		if m.dirty {
			p.Ids = append(p.Ids, m.id)
			p.PaidOrders = append(p.PaidOrders, m.paid)
			p.ConvertedInvitees = append(p.ConvertedInvitees, m.converted)
		}
	}
	if len(p.Ids) > 0 {
		_ = q.MemberSetCountersMany(ctx, p)
	}
}
