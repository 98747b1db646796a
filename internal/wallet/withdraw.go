package wallet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// WithdrawalRequest is a POST /v1/members/{id}/withdrawals body.
type WithdrawalRequest struct {
	ID          string
	MemberID    string
	Amount      string
	Currency    string
	Destination Destination
}

// Fee is max(fee_min, round_half_up(amount × fee_rate)) at the currency's scale: half up because it
// is what members and shops expect of a commercial fee (0.005 is a cent), and the rounding is
// declared, never silent (docs/accounting.md).
func Fee(amount money.Amount, r program.WithdrawalRules) money.Amount {
	fee := amount.MulRate(r.FeeRate, money.RoundHalfUp)
	if fee.Cmp(r.FeeMin) < 0 {
		return r.FeeMin
	}
	return fee
}

// Windows are the limit periods that contain now in the program's time zone: the day and month
// start there, and until is the next day's start.
func Windows(now time.Time, loc *time.Location) (dayStart, monthStart, until time.Time) {
	l := now.In(loc)
	dayStart = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	monthStart = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	return dayStart, monthStart, dayStart.AddDate(0, 0, 1)
}

// Request asks for a withdrawal. Every check runs under the member's row lock, in the order of the
// wallet issue, so concurrent requests of one member are decided one after the other and cannot
// both spend the same money; a refused request writes nothing. Accepted, the amount moves
// available → withdrawing in one entry and the withdrawal waits for review (above review_above)
// or for the next batch. The same id with the same body replays the first answer.
func (w *Wallet) Request(ctx context.Context, r WithdrawalRequest) (Withdrawal, bool, error) {
	amount, err := r.validate()
	if err != nil {
		return Withdrawal{}, false, err
	}
	now := w.clock.Now()
	req := idem.Request{Scope: "withdrawal", Key: r.ID, Hash: idem.HashOf(struct {
		Member, Amount, Currency string
		Destination              Destination
	}{r.MemberID, amount.String(), r.Currency, r.Destination})}
	var out Withdrawal
	var replayed bool
	err = w.ledger.Transact(ctx, func(tx pgx.Tx) error {
		rd := &requestReads{}
		var err error
		out, replayed, err = idem.DoAfterLock(ctx, tx, req, rd.steps(ctx, r, now), func(keep func(Withdrawal)) (Withdrawal, error) {
			return w.request(ctx, tx, r, amount, now, rd, keep)
		})
		return err
	})
	return out, replayed, err
}

// requestReads is everything a withdrawal's checks read, in one round trip with its stored answer if
// any: the member's row (locked first, so the rest, the answer too, is read under the lock:
// duplicates of one member's withdrawal are serialised by it), the program in force, the
// available balance in the requested currency, and the member's withdrawals of the last 33 days
// (any month of any time zone starts within them) that count toward its limits.
type requestReads struct {
	memberFound bool
	program     sqlc.ProgramAtRow
	programErr  error
	available   money.Amount
	recent      []sqlc.WithdrawalRecentRow
}

func (rd *requestReads) steps(ctx context.Context, r WithdrawalRequest, now time.Time) []func(q *store.Queries) error {
	cur := money.Currency(r.Currency)
	steps := []func(q *store.Queries) error{
		// Generic plans for the whole transaction, as on the journal's write path: every query here
		// is a key lookup, and planning each afresh cost more than running it.
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		func(q *store.Queries) error {
			_, err := q.MemberLock(ctx, r.MemberID)
			rd.memberFound = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		},
		func(q *store.Queries) error {
			rd.program, rd.programErr = q.ProgramAt(ctx, now)
			if errors.Is(rd.programErr, pgx.ErrNoRows) {
				return nil
			}
			return rd.programErr
		},
		func(q *store.Queries) (err error) {
			rd.recent, err = q.WithdrawalRecent(ctx, sqlc.WithdrawalRecentParams{MemberID: r.MemberID, Currency: r.Currency,
				Since: now.Add(-33 * 24 * time.Hour)})
			return err
		},
	}
	if cur.Valid() {
		// (An unknown currency is refused as unsupported before the balance matters.)
		steps = append(steps, ledger.BalanceStep(ctx, ledger.MemberAccount(r.MemberID, "available"), cur, &rd.available))
	}
	return steps
}

// validate checks the request's shape; an unknown currency is left for the program's check.
func (r WithdrawalRequest) validate() (money.Amount, error) {
	if err := text("id", r.ID, 1, 200); err != nil {
		return money.Amount{}, err
	}
	if !ledger.MemberIDPattern.MatchString(r.MemberID) {
		return money.Amount{}, apperr.New(apperr.NotFound, "no member %q", r.MemberID)
	}
	if err := r.Destination.validate(); err != nil {
		return money.Amount{}, err
	}
	c := money.Currency(r.Currency)
	if !c.Valid() || c == money.PTS {
		// Still a malformed amount is malformed, whatever the currency.
		if d, err := decimal.NewFromString(r.Amount); err != nil || !d.IsPositive() || len(r.Amount) > 40 {
			return money.Amount{}, apperr.New(apperr.Validation, "amount must be a positive decimal string such as \"120.00\"")
		}
		return money.Amount{}, nil
	}
	a, err := money.Parse(r.Amount, c)
	if err != nil {
		return a, apperr.New(apperr.Validation, "amount: %v", err)
	}
	if !a.IsPositive() {
		return a, apperr.New(apperr.Validation, "amount must be positive")
	}
	return a, nil
}

func (w *Wallet) request(ctx context.Context, tx pgx.Tx, r WithdrawalRequest, amount money.Amount, now time.Time,
	rd *requestReads, keep func(Withdrawal)) (Withdrawal, error) {
	if !rd.memberFound {
		return Withdrawal{}, apperr.New(apperr.NotFound, "no member %q", r.MemberID)
	}
	if rd.programErr != nil {
		return Withdrawal{}, apperr.New(apperr.Validation, "no program is in force at %s", now.Format(time.RFC3339))
	}
	p, err := program.FromStored(rd.program.Version, rd.program.EffectiveAt, rd.program.Rules)
	if err != nil {
		return Withdrawal{}, err
	}
	rules := p.Rules.Withdrawal
	cur := p.Rules.Currency
	if money.Currency(r.Currency) != cur {
		return Withdrawal{}, apperr.New(apperr.UnsupportedCurrency, "the program pays out in %s, not %q", cur, r.Currency)
	}
	available := rd.available
	if available.IsNegative() {
		return Withdrawal{}, apperr.New(apperr.OutstandingDebt, "the member owes %s %s from clawbacks; withdrawals wait until releases repay it", available.Neg(), cur)
	}
	fee := Fee(amount, rules)
	if amount.Cmp(rules.Min) < 0 {
		return Withdrawal{}, apperr.New(apperr.BelowMinimum, "the smallest withdrawal is %s %s", rules.Min, cur)
	}
	if amount.Cmp(fee) <= 0 {
		return Withdrawal{}, apperr.New(apperr.BelowMinimum, "the amount must be more than its fee of %s %s", fee, cur)
	}
	if amount.Cmp(rules.Max) > 0 {
		return Withdrawal{}, apperr.New(apperr.AboveMaximum, "the largest withdrawal is %s %s", rules.Max, cur)
	}
	dayStart, monthStart, until := Windows(now, p.Rules.Location)
	var t struct {
		DayCount               int
		DayAmount, MonthAmount decimal.Decimal
	}
	for _, x := range rd.recent {
		if x.RequestedAt.Before(monthStart) || !x.RequestedAt.Before(until) {
			continue
		}
		t.MonthAmount = t.MonthAmount.Add(x.Amount)
		if !x.RequestedAt.Before(dayStart) {
			t.DayCount++
			t.DayAmount = t.DayAmount.Add(x.Amount)
		}
	}
	if rules.DailyCount > 0 && t.DayCount >= rules.DailyCount {
		return Withdrawal{}, &apperr.Error{Code: apperr.LimitExceeded, Limit: "daily_count", Remaining: "0",
			Detail: fmt.Sprintf("at most %d withdrawals a day (%s, %s); none left today", rules.DailyCount, dayStart.Format("2006-01-02"), p.Rules.Location)}
	}
	for _, l := range []struct {
		name  string
		used  decimal.Decimal
		limit money.Amount
		what  string
	}{{"daily_amount", t.DayAmount, rules.DailyAmount, "a day"}, {"monthly_amount", t.MonthAmount, rules.MonthlyAmount, "a month"}} {
		left := l.limit.Decimal().Sub(l.used)
		if amount.Decimal().GreaterThan(left) {
			if left.IsNegative() {
				left = decimal.Zero
			}
			remaining := money.FormatFixed(left, cur.Scale())
			return Withdrawal{}, &apperr.Error{Code: apperr.LimitExceeded, Limit: l.name, Remaining: remaining,
				Detail: fmt.Sprintf("at most %s %s %s (%s); %s %s left", l.limit, cur, l.what, p.Rules.Location, remaining, cur)}
		}
	}
	if amount.Cmp(available) > 0 {
		return Withdrawal{}, apperr.New(apperr.InsufficientFunds, "%s %s available, %s asked", available, cur, amount)
	}
	status := Approved
	if amount.Cmp(rules.ReviewAbove) > 0 {
		status = PendingReview
	}
	net, _ := amount.Sub(fee)
	out := Withdrawal{ID: r.ID, MemberID: r.MemberID, Amount: amount, Fee: fee, Net: net, Status: status,
		Destination: r.Destination, RequestedAt: now, ProgramVersion: p.Version}
	// One round trip: the stored answer, the entry, and the withdrawal row (which finds its entry by key).
	keep(out)
	key := "withdrawal:" + r.ID
	dest, _ := json.Marshal(r.Destination)
	_, err = w.ledger.PostManyWith(ctx, tx, []ledger.EntryRequest{{Key: key, Kind: "withdrawal", OccurredAt: now,
		Metadata: map[string]any{"member_id": r.MemberID, "withdrawal_id": r.ID, "fee": fee.String()},
		Postings: []ledger.PostingRequest{
			{Account: ledger.MemberAccount(r.MemberID, "available"), Side: ledger.Debit, Amount: amount},
			{Account: ledger.MemberAccount(r.MemberID, "withdrawing"), Side: ledger.Credit, Amount: amount},
		}}}, func() error {
		// A withdrawal that waits for review is told as requested; one approved at once, as requested
		// and approved.
		notes := []notify.Note{note(notify.WithdrawalRequested, out)}
		if out.Status == Approved {
			notes = append(notes, note(notify.WithdrawalApproved, out))
		}
		told := notify.Ahead(ctx, tx, notes...)
		n, err := store.New(tx).WithdrawalInsert(ctx, sqlc.WithdrawalInsertParams{ID: r.ID, MemberID: r.MemberID, Currency: string(cur),
			Amount: amount.Decimal(), Fee: fee.Decimal(), Destination: dest, Status: status, ProgramVersion: p.Version,
			RequestedAt: now, EntryKey: key})
		if err == nil && n != 1 {
			err = fmt.Errorf("withdrawal %s: its entry %s was not found", r.ID, key)
		}
		if err := told(); err != nil {
			return err
		}
		return err
	})
	if err != nil {
		return Withdrawal{}, fmt.Errorf("write withdrawal %s: %w", r.ID, err)
	}
	return out, nil
}

// encodeCursor and decodeCursor make the opaque list cursor: the last row's (requested_at, id).
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	at, id, ok := strings.Cut(string(b), "|")
	if err != nil || !ok {
		return time.Time{}, "", apperr.New(apperr.Validation, "cursor is not one this service gave")
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", apperr.New(apperr.Validation, "cursor is not one this service gave")
	}
	return t, id, nil
}
