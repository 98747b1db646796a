package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// or for the next batch. The same id with the same body replays the first answer. With Coalesce
// on, it shares a transaction with the requests that queued beside it.
func (w *Wallet) Request(ctx context.Context, r WithdrawalRequest) (Withdrawal, bool, error) {
	if g := w.coalesce.Load(); g != nil {
		if o, ok := g.Do(ctx, r); ok {
			return o.Value, o.Replayed, o.Err
		}
	}
	o := w.RequestMany(ctx, []WithdrawalRequest{r})[0]
	return o.Value, o.Replayed, o.Err
}

// RequestOutcome is one request's answer from RequestMany.
type RequestOutcome = idem.Outcome[Withdrawal]

// RequestMany decides several withdrawal requests, each exactly as Request would and in their
// order, in one transaction with a fixed number of statements: the members are locked in one
// statement (sorted by id), their balances, recent withdrawals and stored answers read in the same
// round trip, then every accepted withdrawal is written with one statement per table. A request
// sees the ones before it (a member's second request in the group finds the first's money gone and
// its limits used); a refused request changes nothing and does not stop the others. An id that
// comes back within the group starts a new transaction at the repeat, so the repeat replays the
// first. When the transaction fails as a whole, each of its requests is decided again alone.
func (w *Wallet) RequestMany(ctx context.Context, rs []WithdrawalRequest) []RequestOutcome {
	out := make([]RequestOutcome, len(rs))
	var chunk []pendingRequest
	seen := map[string]bool{}
	flush := func() {
		if len(chunk) > 0 {
			w.requestChunk(ctx, chunk, out)
		}
		chunk = nil
		clear(seen)
	}
	for i, r := range rs {
		amount, err := r.validate()
		if err != nil {
			out[i].Err = err
			continue
		}
		if seen[r.ID] {
			flush()
		}
		seen[r.ID] = true
		chunk = append(chunk, pendingRequest{at: i, r: r, amount: amount})
	}
	flush()
	return out
}

// pendingRequest is a well-formed request of a group, and where its answer goes.
type pendingRequest struct {
	at     int
	r      WithdrawalRequest
	amount money.Amount
}

func (p pendingRequest) idem() idem.Request {
	return idem.Request{Scope: "withdrawal", Key: p.r.ID, Hash: idem.HashOf(struct {
		Member, Amount, Currency string
		Destination              Destination
	}{p.r.MemberID, p.amount.String(), p.r.Currency, p.r.Destination})}
}

// requestChunk decides a group of requests with distinct ids in one transaction.
func (w *Wallet) requestChunk(ctx context.Context, chunk []pendingRequest, out []RequestOutcome) {
	now := w.clock.Now()
	reqs := make([]idem.Request, len(chunk))
	for k, p := range chunk {
		reqs[k] = p.idem()
	}
	var outs []RequestOutcome
	err := w.ledger.Transact(ctx, func(tx pgx.Tx) error {
		rd := &requestReads{}
		var err error
		outs, err = idem.DoManyAfterLock(ctx, tx, reqs, rd.steps(ctx, chunk, now),
			func(fresh []int, keep func(map[int]Withdrawal)) (map[int]error, error) {
				return w.request(ctx, tx, chunk, fresh, now, rd, keep)
			})
		return err
	})
	if err != nil && len(chunk) > 1 {
		// The transaction failed as a whole, not one request: each is decided again alone, so that
		// none fails because of a neighbour it was grouped with.
		for _, p := range chunk {
			w.requestChunk(ctx, []pendingRequest{p}, out)
		}
		return
	}
	for k, p := range chunk {
		if err != nil {
			out[p.at] = RequestOutcome{Err: err}
			continue
		}
		out[p.at] = outs[k]
	}
}

// requestReads is everything a group's checks read, in one round trip with the stored answers: the
// members' rows (locked first, so the rest, the answers too, is read under the locks: duplicates
// of one member's withdrawal are serialised by them), the program in force, each member's
// available balance in its request's currency, and the members' withdrawals of the last 33 days
// (any month of any time zone starts within them) that count toward their limits.
type requestReads struct {
	found      map[string]bool
	program    sqlc.ProgramAtRow
	programErr error
	codes      []string
	curs       []money.Currency
	balances   []money.Amount
	recent     []sqlc.WithdrawalRecentManyRow
}

func (rd *requestReads) steps(ctx context.Context, chunk []pendingRequest, now time.Time) []func(q *store.Queries) error {
	var members []string
	seen := map[string]bool{}
	for _, p := range chunk {
		if !seen[p.r.MemberID] {
			seen[p.r.MemberID] = true
			members = append(members, p.r.MemberID)
		}
		// (An unknown currency is refused as unsupported before the balance matters.)
		code, cur := ledger.MemberAccount(p.r.MemberID, "available"), money.Currency(p.r.Currency)
		if cur.Valid() && !seen[code+"|"+string(cur)] {
			seen[code+"|"+string(cur)] = true
			rd.codes = append(rd.codes, code)
			rd.curs = append(rd.curs, cur)
		}
	}
	rd.balances = make([]money.Amount, len(rd.codes))
	return []func(q *store.Queries) error{
		// Generic plans for the whole transaction, as on the journal's write path: every query here
		// is a key lookup, and planning each afresh cost more than running it.
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		func(q *store.Queries) error {
			ids, err := q.MemberLockMany(ctx, members)
			rd.found = make(map[string]bool, len(ids))
			for _, id := range ids {
				rd.found[id] = true
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
			rd.recent, err = q.WithdrawalRecentMany(ctx, sqlc.WithdrawalRecentManyParams{MemberIds: members,
				Since: now.Add(-33 * 24 * time.Hour)})
			return err
		},
		ledger.BalancesStep(ctx, rd.codes, rd.curs, rd.balances),
	}
}

// spent is what a member's requests earlier in the group took: its recent withdrawals and its
// available balance as the group left them.
type spent struct {
	recent    []used
	available money.Amount
}

type used struct {
	at     time.Time
	amount decimal.Decimal
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

// request decides the group's fresh requests in order, then writes the accepted ones: their stored
// answers, entries, notes and withdrawal rows in one round trip.
func (w *Wallet) request(ctx context.Context, tx pgx.Tx, chunk []pendingRequest, fresh []int, now time.Time,
	rd *requestReads, keep func(map[int]Withdrawal)) (map[int]error, error) {
	refused := map[int]error{}
	var p program.Program
	if rd.programErr == nil {
		var err error
		if p, err = program.FromStored(rd.program.Version, rd.program.EffectiveAt, rd.program.Rules); err != nil {
			return nil, err
		}
	}
	state := make(map[string]*spent, len(rd.codes)) // by available account and currency
	for i, code := range rd.codes {
		state[code+"|"+string(rd.curs[i])] = &spent{available: rd.balances[i]}
	}
	for _, x := range rd.recent {
		if s := state[ledger.MemberAccount(x.MemberID, "available")+"|"+x.Currency]; s != nil {
			s.recent = append(s.recent, used{x.RequestedAt, x.Amount})
		}
	}
	accepted := map[int]Withdrawal{}
	var order []int
	for _, k := range fresh {
		r := chunk[k].r
		if !rd.found[r.MemberID] {
			refused[k] = apperr.New(apperr.NotFound, "no member %q", r.MemberID)
			continue
		}
		if rd.programErr != nil {
			refused[k] = apperr.New(apperr.Validation, "no program is in force at %s", now.Format(time.RFC3339))
			continue
		}
		s := state[ledger.MemberAccount(r.MemberID, "available")+"|"+r.Currency]
		wd, err := decide(r, chunk[k].amount, now, p, s)
		if err != nil {
			refused[k] = err
			continue
		}
		// The next request of the same member sees this one's money gone and its limits used.
		s.available, _ = s.available.Sub(wd.Amount)
		s.recent = append(s.recent, used{now, wd.Amount.Decimal()})
		accepted[k] = wd
		order = append(order, k)
	}
	keep(accepted)
	if len(order) == 0 {
		return refused, nil
	}
	entries := make([]ledger.EntryRequest, len(order))
	ins := sqlc.WithdrawalInsertManyParams{ProgramVersion: p.Version, RequestedAt: now}
	var notes []notify.Note
	for n, k := range order {
		wd := accepted[k]
		key := "withdrawal:" + wd.ID
		entries[n] = ledger.EntryRequest{Key: key, Kind: "withdrawal", OccurredAt: now,
			Metadata: map[string]any{"member_id": wd.MemberID, "withdrawal_id": wd.ID, "fee": wd.Fee.String()},
			Postings: []ledger.PostingRequest{
				{Account: ledger.MemberAccount(wd.MemberID, "available"), Side: ledger.Debit, Amount: wd.Amount},
				{Account: ledger.MemberAccount(wd.MemberID, "withdrawing"), Side: ledger.Credit, Amount: wd.Amount},
			}}
		dest, err := json.Marshal(wd.Destination)
		if err != nil {
			return nil, fmt.Errorf("withdrawal %s destination: %w", wd.ID, err)
		}
		ins.Ids, ins.MemberIds, ins.Currencies = append(ins.Ids, wd.ID), append(ins.MemberIds, wd.MemberID), append(ins.Currencies, string(wd.Amount.Currency()))
		ins.Amounts, ins.Fees, ins.Destinations = append(ins.Amounts, wd.Amount.Decimal()), append(ins.Fees, wd.Fee.Decimal()), append(ins.Destinations, dest)
		ins.Statuses, ins.EntryKeys = append(ins.Statuses, wd.Status), append(ins.EntryKeys, key)
		// A withdrawal that waits for review is told as requested; one approved at once, as requested
		// and approved.
		notes = append(notes, note(notify.WithdrawalRequested, wd))
		if wd.Status == Approved {
			notes = append(notes, note(notify.WithdrawalApproved, wd))
		}
	}
	// One round trip: the stored answers, the entries, the notes and the withdrawal rows (which find
	// their entries by key).
	_, err := w.ledger.PostManyWith(ctx, tx, entries, func() error {
		told := notify.Ahead(ctx, tx, notes...)
		n, err := store.New(tx).WithdrawalInsertMany(ctx, ins)
		if err == nil && n != int64(len(order)) {
			err = fmt.Errorf("%d of %d withdrawals found their entries", n, len(order))
		}
		if err := told(); err != nil {
			return err
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write %d withdrawals: %w", len(order), err)
	}
	return refused, nil
}

// decide checks one request against the program and what its member has, in the order of the
// wallet issue, and answers the withdrawal it would write.
func decide(r WithdrawalRequest, amount money.Amount, now time.Time, p program.Program, s *spent) (Withdrawal, error) {
	rules := p.Rules.Withdrawal
	cur := p.Rules.Currency
	if money.Currency(r.Currency) != cur || s == nil {
		return Withdrawal{}, apperr.New(apperr.UnsupportedCurrency, "the program pays out in %s, not %q", cur, r.Currency)
	}
	available := s.available
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
	for _, x := range s.recent {
		if x.at.Before(monthStart) || !x.at.Before(until) {
			continue
		}
		t.MonthAmount = t.MonthAmount.Add(x.amount)
		if !x.at.Before(dayStart) {
			t.DayCount++
			t.DayAmount = t.DayAmount.Add(x.amount)
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
	return Withdrawal{ID: r.ID, MemberID: r.MemberID, Amount: amount, Fee: fee, Net: net, Status: status,
		Destination: r.Destination, RequestedAt: now, ProgramVersion: p.Version}, nil
}
