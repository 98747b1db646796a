package rebate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/coalesce"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Release is the end of one order's hold.
type Release struct {
	OrderID string
	At      time.Time
}

// Scheduler inserts the hold-release jobs of orders, in the caller's transaction (at once when At
// is past). internal/jobs provides it (a River InsertManyTx); the engine does not import River's
// job types.
type Scheduler func(ctx context.Context, tx pgx.Tx, releases []Release) error

// Engine applies the program to events.
type Engine struct {
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	schedule Scheduler
	coalesce atomic.Pointer[coalesce.Group[Event, Outcome]] // nil: Apply applies each event alone
	clock    clock.Clock
}

// NewEngine returns an engine on the system clock; SetScheduler must be called before events are
// applied.
func NewEngine(pool *pgxpool.Pool, l *ledger.Ledger) *Engine {
	return &Engine{pool: pool, ledger: l, clock: clock.System{}}
}

// SetClock replaces the clock the engine reads "now" from (tests).
func (e *Engine) SetClock(c clock.Clock) { e.clock = c }

// Now is the engine's clock's time.
func (e *Engine) Now() time.Time { return e.clock.Now() }

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

// The outcomes of an event that was not refused.
const (
	// Applied: the event changed what it should (an order accrued, a refund clawed back).
	Applied = "applied"
	// Parked: a refund arrived before its order; it is kept and applied when the order arrives.
	Parked = "parked"
)

// EventResult is the answer to an event; a replay answers the same. Status is an outcome
// (Applied or Parked), not an HTTP status: internal/httpapi chooses that.
type EventResult struct {
	EventID  string   `json:"event_id"`
	Status   string   `json:"status"`
	EntryIDs []int64  `json:"entry_ids"`
	Rebates  []Rebate `json:"rebates"`
	Replayed bool     `json:"-"`
}

func strict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: data is required", ErrValidation)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.FromJSON("data", err)
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
	return validText(field, s)
}

// validText refuses what PostgreSQL's text cannot hold (NUL) and what is not UTF-8, with a clear
// error instead of the database's.
func validText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s must be UTF-8 text without NUL characters", ErrValidation, field)
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
// The window of business times an event may carry, around the engine's now: a shop reports what
// happened, so nothing from the future beyond clock skew, and nothing older than a year and a
// month (a late refund of an old order still fits; a year 0001 or 9999 is a bug in the sender).
const (
	MaxEventAge  = 400 * 24 * time.Hour
	MaxClockSkew = 24 * time.Hour
)

func parse(ev Event, now time.Time) (parsedEvent, error) {
	p := parsedEvent{Event: ev}
	if err := validID("id", ev.ID); err != nil {
		return p, err
	}
	if ev.OccurredAt.Before(now.Add(-MaxEventAge)) || ev.OccurredAt.After(now.Add(MaxClockSkew)) {
		return p, fmt.Errorf("%w: occurred_at %s is outside the accepted window: at most 400 days before now and 24 hours after",
			ErrValidation, ev.OccurredAt.UTC().Format(time.RFC3339))
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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
		var released []Rebate
		for _, l := range lots {
			left := l.Amount.Sub(l.ClawedBack)
			if !left.IsPositive() {
				continue
			}
			a, err := money.New(left, money.Currency(l.Currency))
			if err != nil {
				return err
			}
			released = append(released, Rebate{MemberID: l.BeneficiaryID, Leg: l.Leg, Amount: a, Currency: a.Currency(), ReleaseAt: order.ReleaseAt})
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
			if err := notify.Write(ctx, tx, notify.Note{Type: notify.RebateReleased,
				Data: ReleasedNote{OrderID: orderID, EntryID: entry.ID, Released: released}}); err != nil {
				return err
			}
		}
		// Released points start their validity now, under the order's program.
		for _, l := range lots {
			if left := l.Amount.Sub(l.ClawedBack); l.Leg == "points" && left.IsPositive() {
				p, err := q.ProgramGet(ctx, order.ProgramVersion)
				if err != nil {
					return err
				}
				prog, err := program.FromStored(p.Version, p.EffectiveAt, p.Rules)
				if err != nil {
					return err
				}
				if err := grantPointsLot(ctx, q, l.BeneficiaryID, "release", orderID, left.IntPart(), order.ReleaseAt, prog.Rules.PointsValidity); err != nil {
					return err
				}
			}
		}
		now := e.clock.Now()
		return q.OrderSetReleased(ctx, sqlc.OrderSetReleasedParams{OrderID: orderID, ReleasedAt: &now, EntryID: entryID})
	})
}

func mustDecimal(s string) decimal.Decimal {
	d, _ := decimal.NewFromString(s)
	return d
}
