// Package wallet takes members' money out: withdrawals checked against the program's limits under
// the member's lock, operator review, cancellation, payout batches handed to a pluggable Provider,
// and each item's result settled exactly once. Every movement is a journal entry written through
// internal/ledger in the same transaction as the wallet's own rows (docs/accounting.md, "Wallet").
package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/coalesce"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/page"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Statuses of a withdrawal.
const (
	PendingReview = "pending_review"
	Approved      = "approved"
	Rejected      = "rejected"
	Cancelled     = "cancelled"
	Paid          = "paid"
	Failed        = "failed"
)

// Statuses lists every withdrawal status (for validating list filters).
var Statuses = []string{PendingReview, Approved, Rejected, Cancelled, Paid, Failed}

// SubmitScheduler inserts, in the caller's transaction, the job that submits a new batch to the
// provider. internal/jobs provides it (a River InsertTx); the wallet does not import River.
type SubmitScheduler func(ctx context.Context, tx pgx.Tx, batchID string) error

// Wallet is the withdrawal and payout service.
type Wallet struct {
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	clock    clock.Clock
	provider Provider
	submit   SubmitScheduler
	coalesce atomic.Pointer[coalesce.Group[WithdrawalRequest, RequestOutcome]] // nil: Request decides each alone
}

// New returns a wallet that pays through provider. SetSubmitScheduler must be called before
// batches are cut.
func New(pool *pgxpool.Pool, l *ledger.Ledger, provider Provider) *Wallet {
	return &Wallet{pool: pool, ledger: l, clock: clock.System{}, provider: provider}
}

// SetClock replaces the clock the wallet reads "now" from (tests stand at 23:59:59 with it).
func (w *Wallet) SetClock(c clock.Clock) { w.clock = c }

// SetSubmitScheduler wires the batch submission job (the River client is built after the wallet).
func (w *Wallet) SetSubmitScheduler(s SubmitScheduler) { w.submit = s }

// Provider is the provider batches are paid through.
func (w *Wallet) Provider() Provider { return w.provider }

// Destination is where a withdrawal is paid: personal data, stored whole, shown whole only in the
// provider's file and to operators (Masked everywhere else), never logged.
type Destination struct {
	Type    string `json:"type"`
	Account string `json:"account"`
	Name    string `json:"name"`
}

// MaskedDestination is a destination as members, shops and auditors see it.
type MaskedDestination struct {
	Type         string `json:"type"`
	AccountLast4 string `json:"account_last4"`
}

// Masked keeps the type and the account's last four characters.
func (d Destination) Masked() MaskedDestination {
	r := []rune(d.Account)
	if len(r) > 4 {
		r = r[len(r)-4:]
	}
	return MaskedDestination{Type: d.Type, AccountLast4: string(r)}
}

// String shows a destination masked, so that printing one (in a log line or an error) never shows it whole.
func (d Destination) String() string { return d.Type + " …" + d.Masked().AccountLast4 }

func (d Destination) validate() error {
	switch d.Type {
	case "bank", "alipay", "wechat":
	default:
		return apperr.New(apperr.Validation, "destination.type must be bank, alipay or wechat")
	}
	if err := text("destination.account", d.Account, 1, 100); err != nil {
		return err
	}
	return text("destination.name", d.Name, 1, 200)
}

// text checks a client string: its length in characters, UTF-8, no NUL or other control characters.
func text(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return apperr.New(apperr.Validation, "%s must be UTF-8 text without control characters", field)
	}
	if n := utf8.RuneCountInString(s); n < minLen || n > maxLen {
		return apperr.New(apperr.Validation, "%s must be %d to %d characters", field, minLen, maxLen)
	}
	return nil
}

// Withdrawal is a withdrawal as stored; its JSON form is what the idempotency record keeps, so a
// replayed create answers the original bytes. EntryID (the request's entry, journal key
// "withdrawal:{id}") is read from the row and not part of the JSON form.
type Withdrawal struct {
	ID             string
	MemberID       string
	Amount         money.Amount
	Fee            money.Amount
	Net            money.Amount
	Status         string
	Destination    Destination
	RequestedAt    time.Time
	BatchID        string
	Reason         string
	ReviewedAt     *time.Time
	SettledAt      *time.Time
	ProgramVersion int64
	EntryID        int64
}

type withdrawalJSON struct {
	ID             string      `json:"id"`
	MemberID       string      `json:"member_id"`
	Amount         string      `json:"amount"`
	Fee            string      `json:"fee"`
	Currency       string      `json:"currency"`
	Status         string      `json:"status"`
	Destination    Destination `json:"destination"`
	RequestedAt    time.Time   `json:"requested_at"`
	BatchID        string      `json:"batch_id"`
	Reason         string      `json:"reason"`
	ReviewedAt     *time.Time  `json:"reviewed_at"`
	SettledAt      *time.Time  `json:"settled_at"`
	ProgramVersion int64       `json:"program_version"`
}

// MarshalJSON is the stored form (amounts as strings in their currency).
func (w Withdrawal) MarshalJSON() ([]byte, error) {
	return json.Marshal(withdrawalJSON{ID: w.ID, MemberID: w.MemberID, Amount: w.Amount.String(), Fee: w.Fee.String(),
		Currency: string(w.Amount.Currency()), Status: w.Status, Destination: w.Destination, RequestedAt: w.RequestedAt,
		BatchID: w.BatchID, Reason: w.Reason, ReviewedAt: w.ReviewedAt, SettledAt: w.SettledAt,
		ProgramVersion: w.ProgramVersion})
}

// UnmarshalJSON reads the stored form back.
func (w *Withdrawal) UnmarshalJSON(b []byte) error {
	var j withdrawalJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c := money.Currency(j.Currency)
	amount, err := money.Parse(j.Amount, c)
	if err != nil {
		return err
	}
	fee, err := money.Parse(j.Fee, c)
	if err != nil {
		return err
	}
	net, err := amount.Sub(fee)
	if err != nil {
		return err
	}
	*w = Withdrawal{ID: j.ID, MemberID: j.MemberID, Amount: amount, Fee: fee, Net: net, Status: j.Status,
		Destination: j.Destination, RequestedAt: j.RequestedAt, BatchID: j.BatchID, Reason: j.Reason,
		ReviewedAt: j.ReviewedAt, SettledAt: j.SettledAt, ProgramVersion: j.ProgramVersion}
	return nil
}

func withdrawalFromRow(r sqlc.Withdrawal) (Withdrawal, error) {
	c := money.Currency(r.Currency)
	amount, err := money.New(r.Amount, c)
	if err != nil {
		return Withdrawal{}, fmt.Errorf("withdrawal %s: %w", r.ID, err)
	}
	fee, err := money.New(r.Fee, c)
	if err != nil {
		return Withdrawal{}, fmt.Errorf("withdrawal %s: %w", r.ID, err)
	}
	net, _ := amount.Sub(fee)
	var d Destination
	if err := json.Unmarshal(r.Destination, &d); err != nil {
		return Withdrawal{}, fmt.Errorf("withdrawal %s destination: %w", r.ID, err)
	}
	return Withdrawal{ID: r.ID, MemberID: r.MemberID, Amount: amount, Fee: fee, Net: net, Status: r.Status,
		Destination: d, RequestedAt: r.RequestedAt, BatchID: r.BatchID.String, Reason: r.Reason,
		ReviewedAt: r.ReviewedAt, SettledAt: r.SettledAt, ProgramVersion: r.ProgramVersion, EntryID: r.RequestEntryID}, nil
}

// Get reads one withdrawal.
func (w *Wallet) Get(ctx context.Context, id string) (Withdrawal, error) {
	row, err := store.New(w.pool).WithdrawalGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Withdrawal{}, apperr.New(apperr.NotFound, "no withdrawal %q", id)
	}
	if err != nil {
		return Withdrawal{}, err
	}
	return withdrawalFromRow(row)
}

// ListFilter selects a page of withdrawals.
type ListFilter struct {
	MemberID string // "" for every member
	Status   string // "" for every status
	Cursor   string
	Limit    int
}

// withdrawalsList names the withdrawal lists' cursors (a member's and the review queue share
// their order, so a cursor of one serves the other).
const withdrawalsList = "withdrawals"

// List pages through withdrawals oldest first (a member's, or every member's: the review queue).
func (w *Wallet) List(ctx context.Context, f ListFilter) ([]Withdrawal, string, error) {
	if f.Status != "" && !contains(Statuses, f.Status) {
		return nil, "", apperr.New(apperr.Validation, "status must be one of %s", strings.Join(Statuses, ", "))
	}
	afterAt, afterID, err := page.ParseTimeID(withdrawalsList, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := page.Limit(f.Limit)
	q := store.New(w.pool)
	var rows []sqlc.Withdrawal
	if f.MemberID != "" {
		rows, err = q.WithdrawalListByMember(ctx, sqlc.WithdrawalListByMemberParams{MemberID: f.MemberID, Status: f.Status,
			AfterAt: afterAt, AfterID: afterID, MaxRows: int32(limit + 1)})
	} else {
		rows, err = q.WithdrawalListByStatus(ctx, sqlc.WithdrawalListByStatusParams{Status: f.Status,
			AfterAt: afterAt, AfterID: afterID, MaxRows: int32(limit + 1)})
	}
	if err != nil {
		return nil, "", err
	}
	rows, more := page.Trim(rows, limit)
	out := make([]Withdrawal, 0, len(rows))
	for _, r := range rows {
		wd, err := withdrawalFromRow(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, wd)
	}
	next := ""
	if more {
		last := rows[len(rows)-1]
		next = page.TimeIDCursor(withdrawalsList, last.RequestedAt, last.ID)
	}
	return out, next, nil
}

// PaidOut is the sum of a member's paid withdrawals per currency.
func (w *Wallet) PaidOut(ctx context.Context, memberID string) (map[money.Currency]money.Amount, error) {
	rows, err := store.New(w.pool).WithdrawalPaidByMember(ctx, memberID)
	if err != nil {
		return nil, err
	}
	out := map[money.Currency]money.Amount{}
	for _, r := range rows {
		a, err := money.New(r.Paid, money.Currency(r.Currency))
		if err != nil {
			return nil, err
		}
		out[a.Currency()] = a
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
