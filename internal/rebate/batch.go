package rebate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/program"
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
	if o, ok := e.applyCoalesced(ctx, ev); ok {
		return o.Result, o.Err
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
		p, err := parse(ev, e.clock.Now())
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

	programs []program.Program // the versions in force at the events' instants, newest first
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
	notes      []func() notify.Note // built once the entries' ids are known
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
	// The entries go in the same round trip as River's insert of the release jobs (which name orders,
	// not entries); the rest goes in one more: the events with their answers, the rows of every
	// table, and the entries' balances.
	jw := b.e.ledger.NewWriter(b.tx)
	schedule := func() error {
		if len(b.releases) == 0 {
			return nil
		}
		if b.e.schedule == nil {
			return errors.New("rebate engine has no release scheduler")
		}
		if err := b.e.schedule(ctx, b.tx, b.releases); err != nil {
			return fmt.Errorf("schedule releases: %w", err)
		}
		return nil
	}
	if err := b.writeEntries(ctx, jw, schedule); err != nil {
		return err
	}
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
		evs.Responses = append(evs.Responses, body)
		out[i].Result = w.res
	}
	if len(evs.Ids) > 0 {
		_ = q.EventInsertMany(ctx, evs) // first: orders and refunds name their event
	}
	b.queueOrders(ctx, q)
	b.queueRefunds(ctx, q)
	b.queueMembers(ctx, q)
	if len(b.notes) > 0 {
		notes := make([]notify.Note, len(b.notes))
		for i, n := range b.notes {
			notes[i] = n()
		}
		if err := notify.Queue(ctx, q, notes...); err != nil {
			return err
		}
	}
	var then []func(q *store.Queries) error
	for _, pc := range b.pointClaws {
		then = append(then, func(q *store.Queries) error {
			if _, err := q.PointsLotClaw(ctx, pc); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("claw points lot: %w", err)
			}
			return nil
		})
	}
	// Balances last: the rows of popular referrers' accounts are the most contended locks a batch
	// takes, so they are held only for this statement and the commit.
	balances, flushed := jw.FlushSteps(ctx)
	err = pl.Send(ctx, append(then, balances...)...)
	if race := raceOr(err); errors.Is(race, errRace) {
		return race
	}
	return flushed(err)
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
			res.Replayed = true
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
		p, err := program.FromStored(row.Version, row.EffectiveAt, row.Rules)
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
func (b *batch) programAt(at time.Time) (program.Program, error) {
	at = at.Truncate(time.Microsecond)
	for _, p := range b.programs {
		if !p.EffectiveAt.After(at) {
			return p, nil
		}
	}
	return program.Program{}, fmt.Errorf("%w: no program is in force at %s", ErrValidation, at.Format(time.RFC3339))
}

func (b *batch) newEntry(req ledger.EntryRequest) *pendingEntry {
	pe := &pendingEntry{req: req}
	b.entries = append(b.entries, pe)
	return pe
}
