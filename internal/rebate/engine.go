package rebate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Scheduler inserts the hold-release job of an order, in the caller's transaction, to run at `at`.
// internal/jobs provides it (a River InsertTx); the engine does not import River's job types.
type Scheduler func(ctx context.Context, tx pgx.Tx, orderID string, at time.Time) error

// Engine applies the program to events.
type Engine struct {
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	schedule Scheduler
}

// NewEngine returns an engine; SetScheduler must be called before events are applied.
func NewEngine(pool *pgxpool.Pool, l *ledger.Ledger) *Engine {
	return &Engine{pool: pool, ledger: l}
}

// SetScheduler wires the release job (the River client is built after the engine, whose worker it runs).
func (e *Engine) SetScheduler(s Scheduler) { e.schedule = s }

func decimalFromInt(n int64) decimal.Decimal { return decimal.NewFromInt(n) }

// Event is one shop event.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// Event types.
const (
	OrderPaid     = "order.paid"
	OrderRefunded = "order.refunded"
)

// PaidData is order.paid's data.
type PaidData struct {
	OrderID  string `json:"order_id"`
	MemberID string `json:"member_id"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// RefundedData is order.refunded's data.
type RefundedData struct {
	OrderID  string `json:"order_id"`
	RefundID string `json:"refund_id"`
	Amount   string `json:"amount"`
}

// Rebate is one leg of an accrual in an event's answer.
type Rebate struct {
	MemberID  string         `json:"member_id"`
	Leg       string         `json:"leg"`
	Amount    money.Amount   `json:"amount"`
	Currency  money.Currency `json:"currency"`
	ReleaseAt time.Time      `json:"release_at"`
}

// UnmarshalJSON reads a stored answer back (the amount is parsed in its currency).
func (r *Rebate) UnmarshalJSON(b []byte) error {
	var aux struct {
		MemberID  string    `json:"member_id"`
		Leg       string    `json:"leg"`
		Amount    string    `json:"amount"`
		Currency  string    `json:"currency"`
		ReleaseAt time.Time `json:"release_at"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	a, err := money.Parse(aux.Amount, money.Currency(aux.Currency))
	if err != nil {
		return err
	}
	*r = Rebate{MemberID: aux.MemberID, Leg: aux.Leg, Amount: a, Currency: a.Currency(), ReleaseAt: aux.ReleaseAt}
	return nil
}

// EventResult is the answer to an event; a replay answers the same.
type EventResult struct {
	StatusCode int      `json:"-"`
	EventID    string   `json:"event_id"`
	Status     string   `json:"status"`
	EntryIDs   []int64  `json:"entry_ids"`
	Rebates    []Rebate `json:"rebates"`
	Replayed   bool     `json:"-"`
}

func strict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: data is required", ErrValidation)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: data: %v", ErrValidation, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data: trailing content", ErrValidation)
	}
	return nil
}

func validID(field, s string) error {
	if s == "" || len(s) > 200 {
		return fmt.Errorf("%w: %s must be 1 to 200 characters", ErrValidation, field)
	}
	return nil
}

// parsedEvent is an event whose shape is valid, with the hash a replay must match.
type parsedEvent struct {
	Event
	paid     PaidData
	refunded RefundedData
	hash     [32]byte
}

// parse checks everything that needs no database.
func parse(ev Event) (parsedEvent, error) {
	p := parsedEvent{Event: ev}
	if err := validID("id", ev.ID); err != nil {
		return p, err
	}
	if ev.OccurredAt.IsZero() {
		return p, fmt.Errorf("%w: occurred_at is required (RFC 3339)", ErrValidation)
	}
	var typed any
	switch ev.Type {
	case OrderPaid:
		if err := strict(ev.Data, &p.paid); err != nil {
			return p, err
		}
		if err := validID("data.order_id", p.paid.OrderID); err != nil {
			return p, err
		}
		if p.paid.MemberID == "" {
			return p, fmt.Errorf("%w: data.member_id is required", ErrValidation)
		}
		typed = p.paid
	case OrderRefunded:
		if err := strict(ev.Data, &p.refunded); err != nil {
			return p, err
		}
		if err := validID("data.order_id", p.refunded.OrderID); err != nil {
			return p, err
		}
		if err := validID("data.refund_id", p.refunded.RefundID); err != nil {
			return p, err
		}
		typed = p.refunded
	default:
		return p, fmt.Errorf("%w: unknown event type %q (want order.paid or order.refunded)", ErrValidation, ev.Type)
	}
	canon, _ := json.Marshal(struct {
		ID, Type, OccurredAt string
		Data                 any
	}{ev.ID, ev.Type, ev.OccurredAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), typed})
	p.hash = sha256.Sum256(canon)
	return p, nil
}

// Apply applies one event exactly once. Everything it changes (the event record, orders, lots,
// journal entries, the release job) commits together or not at all; an error changes nothing.
func (e *Engine) Apply(ctx context.Context, ev Event) (EventResult, error) {
	p, err := parse(ev)
	if err != nil {
		return EventResult{}, err
	}
	var res EventResult
	err = e.ledger.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = e.applyTx(ctx, tx, p)
		return err
	})
	return res, err
}

// applyTx claims the event id and applies the event in tx, or answers the stored response of an
// earlier identical event.
func (e *Engine) applyTx(ctx context.Context, tx pgx.Tx, p parsedEvent) (EventResult, error) {
	q := store.New(tx)
	var res EventResult
	_, err := q.EventInsert(ctx, sqlc.EventInsertParams{ID: p.ID, Type: p.Type, RequestHash: p.hash[:]})
	if errors.Is(err, pgx.ErrNoRows) {
		prev, err := q.EventGet(ctx, p.ID)
		if err != nil {
			return res, err
		}
		if !bytes.Equal(prev.RequestHash, p.hash[:]) {
			return res, fmt.Errorf("%w: event %q was sent before with a different body", ErrIdempotencyConflict, p.ID)
		}
		if err := json.Unmarshal(prev.Response, &res); err != nil {
			return res, err
		}
		res.StatusCode, res.Replayed = int(prev.StatusCode), true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res = EventResult{EventID: p.ID, EntryIDs: []int64{}, Rebates: []Rebate{}}
	switch p.Type {
	case OrderPaid:
		err = e.orderPaid(ctx, tx, p.Event, p.paid, &res)
	case OrderRefunded:
		err = e.orderRefunded(ctx, tx, p.Event, p.refunded, &res)
	}
	if err != nil {
		return res, err
	}
	body, _ := json.Marshal(res)
	return res, q.EventSetResponse(ctx, sqlc.EventSetResponseParams{ID: p.ID, StatusCode: int32(res.StatusCode), Response: body})
}

type lot struct {
	beneficiary string
	leg         string
	amount      money.Amount
}

func (e *Engine) orderPaid(ctx context.Context, tx pgx.Tx, ev Event, d PaidData, res *EventResult) error {
	q := store.New(tx)
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
	p, err := ProgramAt(ctx, tx, ev.OccurredAt)
	if err != nil {
		return err
	}
	r := p.Rules
	if cur != r.Currency {
		return fmt.Errorf("%w: the program in force pays in %s, the order is in %s", ErrUnsupportedCurrency, r.Currency, cur)
	}
	buyer, err := q.MemberCountPaidOrder(ctx, d.MemberID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", ErrUnknownMember, d.MemberID)
	}
	if err != nil {
		return err
	}
	firstOrder := buyer.PaidOrders == 1
	upline := buyer.Upline
	if len(upline) > len(r.LevelRates) {
		upline = upline[:len(r.LevelRates)]
	}

	var lots []lot
	if len(upline) > 0 {
		add := int32(0)
		if firstOrder {
			add = 1
		}
		n, err := q.MemberAddConvertedInvitees(ctx, sqlc.MemberAddConvertedInviteesParams{ID: upline[0], Add: add})
		if err != nil {
			return fmt.Errorf("count referrer %s: %w", upline[0], err)
		}
		converted, u1 := int(n), upline[0]
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
			lots = append(lots, lot{u1, "first_order_bonus", r.FirstOrderBonus})
		}
		if firstOrder {
			for _, m := range r.Milestones {
				if m.Converted == converted && m.Bonus.IsPositive() {
					lots = append(lots, lot{u1, "milestone", m.Bonus})
				}
			}
		}
		pts := money.Round(x.Decimal().Mul(r.PointsPerUnit), money.PTS, money.RoundDown)
		if pts.IsPositive() {
			lots = append(lots, lot{u1, "points", pts})
		}
	}

	releaseAt := ev.OccurredAt.Add(r.HoldPeriod)
	order := sqlc.OrderInsertParams{OrderID: d.OrderID, EventID: ev.ID, MemberID: d.MemberID,
		Amount: x.Decimal(), Currency: string(cur), OccurredAt: ev.OccurredAt, ProgramVersion: p.Version,
		Upline: nonNil(buyer.Upline), ReleaseAt: releaseAt}
	res.StatusCode, res.Status = http.StatusCreated, "applied"
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
		}
		for _, c := range []money.Currency{r.Currency, money.PTS} {
			if t, ok := totals[c]; ok {
				req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: t})
			}
		}
		// The accrual's key is the order id: finding it taken means another event paid this order.
		entry, err := e.ledger.Post(ctx, tx, req)
		if errors.Is(err, ledger.ErrIdempotencyConflict) || (err == nil && entry.Replayed) {
			return fmt.Errorf("%w: order %q was paid by another event", ErrIdempotencyConflict, d.OrderID)
		}
		if err != nil {
			return err
		}
		order.AccrualEntryID = &entry.ID
		res.EntryIDs = append(res.EntryIDs, entry.ID)
	}
	if err := insertOrder(ctx, q, order); err != nil {
		return err
	}
	if len(lots) > 0 {
		lp := sqlc.LotInsertManyParams{OrderID: d.OrderID, ProgramVersion: p.Version, Upline: nonNil(upline)}
		for _, l := range lots {
			lp.BeneficiaryIds = append(lp.BeneficiaryIds, l.beneficiary)
			lp.Legs = append(lp.Legs, l.leg)
			lp.Currencies = append(lp.Currencies, string(l.amount.Currency()))
			lp.Amounts = append(lp.Amounts, l.amount.Decimal())
			res.Rebates = append(res.Rebates, Rebate{MemberID: l.beneficiary, Leg: l.leg, Amount: l.amount, Currency: l.amount.Currency(), ReleaseAt: releaseAt})
		}
		if err := q.LotInsertMany(ctx, lp); err != nil {
			return fmt.Errorf("record lots: %w", err)
		}
		if e.schedule == nil {
			return errors.New("rebate engine has no release scheduler")
		}
		if err := e.schedule(ctx, tx, d.OrderID, releaseAt); err != nil {
			return fmt.Errorf("schedule release: %w", err)
		}
	}
	// Refunds that arrived before their order are applied now, in arrival order.
	parked, err := q.RefundListParked(ctx, d.OrderID)
	if err != nil {
		return err
	}
	for _, pr := range parked {
		order, err := q.OrderLock(ctx, d.OrderID)
		if err != nil {
			return err
		}
		amt, err := money.New(pr.Amount, cur)
		if err != nil {
			// A parked amount finer than the order's currency cannot be clawed exactly: keep it as an anomaly.
			amt = money.Zero(cur)
		}
		id, err := e.applyRefund(ctx, tx, order, pr.RefundID, amt, pr.Amount, ev.OccurredAt, true)
		if err != nil {
			return err
		}
		if id != 0 {
			res.EntryIDs = append(res.EntryIDs, id)
		}
	}
	return nil
}

// insertOrder records the order; an order id paid by another event is a conflict.
func insertOrder(ctx context.Context, q *store.Queries, o sqlc.OrderInsertParams) error {
	err := q.OrderInsert(ctx, o)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "orders_pkey" {
		return fmt.Errorf("%w: order %q was paid by another event", ErrIdempotencyConflict, o.OrderID)
	}
	if err != nil {
		return fmt.Errorf("record order: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (e *Engine) orderRefunded(ctx context.Context, tx pgx.Tx, ev Event, d RefundedData, res *EventResult) error {
	q := store.New(tx)
	order, err := q.OrderLock(ctx, d.OrderID)
	parked := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !parked {
		return err
	}
	var cur money.Currency
	if parked {
		p, err := ProgramAt(ctx, tx, ev.OccurredAt)
		if err != nil {
			return err
		}
		cur = p.Rules.Currency
	} else {
		cur = money.Currency(order.Currency)
	}
	amt, err := money.Parse(d.Amount, cur)
	if err != nil {
		return fmt.Errorf("%w: data.amount: %v", ErrValidation, err)
	}
	if !amt.IsPositive() {
		return fmt.Errorf("%w: data.amount must be positive", ErrValidation)
	}
	status := "parked"
	if !parked {
		status = "applied"
	}
	if _, err := q.RefundInsert(ctx, sqlc.RefundInsertParams{RefundID: d.RefundID, EventID: ev.ID, OrderID: d.OrderID,
		Amount: amt.Decimal(), Status: "parked"}); errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: refund %q was sent by another event", ErrIdempotencyConflict, d.RefundID)
	} else if err != nil {
		return err
	}
	res.Status = status
	if parked {
		res.StatusCode = http.StatusAccepted
		return nil
	}
	res.StatusCode = http.StatusCreated
	id, err := e.applyRefund(ctx, tx, order, d.RefundID, amt, amt.Decimal(), ev.OccurredAt, false)
	if err != nil {
		return err
	}
	if id != 0 {
		res.EntryIDs = append(res.EntryIDs, id)
	}
	return nil
}

// applyRefund claws back, proportionally and cumulatively, what the refund takes away. A refund that
// arrived before its order (late = true) is applied up to the order's amount and the excess is
// recorded as an anomaly; a live refund beyond the order is refused.
func (e *Engine) applyRefund(ctx context.Context, tx pgx.Tx, order sqlc.Order, refundID string, amt money.Amount,
	raw decimal.Decimal, at time.Time, late bool) (int64, error) {
	q := store.New(tx)
	x := order.Amount
	applied := amt.Decimal()
	excess := raw.Sub(applied)
	if room := x.Sub(order.Refunded); applied.GreaterThan(room) {
		if !late {
			return 0, fmt.Errorf("%w: order %s is %s, already refunded %s, this refund %s", ErrRefundExceedsOrder,
				order.OrderID, x, order.Refunded, applied)
		}
		excess = excess.Add(applied.Sub(room))
		applied = room
	}
	z := order.Refunded.Add(applied)
	lots, err := q.LotListByOrder(ctx, order.OrderID)
	if err != nil {
		return 0, err
	}
	from := "held"
	if order.ReleasedAt != nil {
		from = "available"
	}
	req := ledger.EntryRequest{Key: "refund:" + refundID, Kind: "clawback", OccurredAt: at,
		Metadata: map[string]any{"order_id": order.OrderID, "refund_id": refundID, "refunded_total": z.String()}}
	if order.AccrualEntryID != nil {
		req.RefersTo = *order.AccrualEntryID
	}
	totals := map[string]decimal.Decimal{}
	for _, l := range lots {
		target := l.ClawedBack
		switch l.Leg {
		case "level1", "level2", "level3", "points":
			// kept = round_down(amount × (X − Z) / X), computed exactly: QuoRem truncates the
			// quotient at the currency's scale, where Div would round at 16 digits first.
			kept, _ := l.Amount.Mul(x.Sub(z)).QuoRem(x, money.Currency(l.Currency).Scale())
			if kept.LessThan(l.Amount.Sub(l.ClawedBack)) {
				target = l.Amount.Sub(kept)
			}
		case "first_order_bonus":
			if z.Equal(x) {
				target = l.Amount
			}
		}
		delta := target.Sub(l.ClawedBack)
		if !delta.IsPositive() {
			continue
		}
		a, err := money.New(delta, money.Currency(l.Currency))
		if err != nil {
			return 0, err
		}
		acct := ledger.MemberAccount(l.BeneficiaryID, from)
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: acct, Side: ledger.Debit, Amount: a})
		if from == "available" {
			req.AllowOverdraft = append(req.AllowOverdraft, acct)
			if l.Leg == "points" {
				// The released points lot shrinks too, as far as its points are unspent.
				if _, err := q.PointsLotClaw(ctx, sqlc.PointsLotClawParams{MemberID: l.BeneficiaryID, OrderID: order.OrderID, Points: delta.IntPart()}); err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return 0, err
				}
			}
		}
		totals[l.Currency] = totals[l.Currency].Add(delta)
		if err := q.LotSetClawedBack(ctx, sqlc.LotSetClawedBackParams{OrderID: l.OrderID, BeneficiaryID: l.BeneficiaryID, Leg: l.Leg, ClawedBack: target}); err != nil {
			return 0, err
		}
	}
	if err := q.OrderAddRefund(ctx, sqlc.OrderAddRefundParams{OrderID: order.OrderID, Applied: applied, Excess: excess}); err != nil {
		return 0, err
	}
	var entryID *int64
	if len(req.Postings) > 0 {
		for _, c := range []string{order.Currency, string(money.PTS)} {
			if t, ok := totals[c]; ok {
				a, _ := money.New(t, money.Currency(c))
				req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Credit, Amount: a})
			}
		}
		entry, err := e.ledger.Post(ctx, tx, req)
		if err != nil {
			return 0, err
		}
		entryID = &entry.ID
	}
	if err := q.RefundSetApplied(ctx, sqlc.RefundSetAppliedParams{RefundID: refundID, EntryID: entryID}); err != nil {
		return 0, err
	}
	if entryID == nil {
		return 0, nil
	}
	return *entryID, nil
}

// Release moves what is left of an order's rebates from held to available, once. It is the River
// release job's work; running it again does nothing.
func (e *Engine) Release(ctx context.Context, orderID string) error {
	return e.ledger.Transact(ctx, func(tx pgx.Tx) error {
		q := store.New(tx)
		order, err := q.OrderLock(ctx, orderID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: order %q", ErrNotFound, orderID)
		}
		if err != nil {
			return err
		}
		if order.ReleasedAt != nil {
			return nil
		}
		lots, err := q.LotListByOrder(ctx, orderID)
		if err != nil {
			return err
		}
		req := ledger.EntryRequest{Key: "release:" + orderID, Kind: "release", OccurredAt: order.ReleaseAt,
			Metadata: map[string]any{"order_id": orderID}}
		if order.AccrualEntryID != nil {
			req.RefersTo = *order.AccrualEntryID
		}
		for _, l := range lots {
			left := l.Amount.Sub(l.ClawedBack)
			if !left.IsPositive() {
				continue
			}
			a, err := money.New(left, money.Currency(l.Currency))
			if err != nil {
				return err
			}
			req.Postings = append(req.Postings,
				ledger.PostingRequest{Account: ledger.MemberAccount(l.BeneficiaryID, "held"), Side: ledger.Debit, Amount: a},
				ledger.PostingRequest{Account: ledger.MemberAccount(l.BeneficiaryID, "available"), Side: ledger.Credit, Amount: a})
			if err := q.LotSetReleased(ctx, sqlc.LotSetReleasedParams{OrderID: orderID, BeneficiaryID: l.BeneficiaryID, Leg: l.Leg, Released: left}); err != nil {
				return err
			}
		}
		var entryID *int64
		if len(req.Postings) > 0 {
			entry, err := e.ledger.Post(ctx, tx, req)
			if err != nil {
				return err
			}
			entryID = &entry.ID
		}
		// Released points start their validity now, under the order's program.
		for _, l := range lots {
			if left := l.Amount.Sub(l.ClawedBack); l.Leg == "points" && left.IsPositive() {
				p, err := q.ProgramGet(ctx, order.ProgramVersion)
				if err != nil {
					return err
				}
				prog, err := programFromRow(p.Version, p.EffectiveAt, p.Rules)
				if err != nil {
					return err
				}
				if err := grantPointsLot(ctx, q, l.BeneficiaryID, "release", orderID, left.IntPart(), order.ReleaseAt, prog.Rules.PointsValidity); err != nil {
					return err
				}
			}
		}
		now := time.Now()
		return q.OrderSetReleased(ctx, sqlc.OrderSetReleasedParams{OrderID: orderID, ReleasedAt: &now, EntryID: entryID})
	})
}

func mustDecimal(s string) decimal.Decimal {
	d, _ := decimal.NewFromString(s)
	return d
}
