package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Action is something done to a withdrawal after its request.
type Action string

// The actions: an operator approves or rejects a withdrawal under review; the shop or the member
// cancels one that is not in a batch yet.
const (
	Approve Action = "approve"
	Reject  Action = "reject"
	Cancel  Action = "cancel"
)

// Act applies an action exactly once: the same action again (same reason) replays its first answer;
// an action the withdrawal's state does not allow is invalid_state and changes nothing. Reject and
// cancel return the money withdrawing → available in one entry. memberID, when not empty, is the
// member the caller acts for: another member's withdrawal is not found.
func (w *Wallet) Act(ctx context.Context, id string, action Action, reason, memberID string) (Withdrawal, bool, error) {
	if err := text("id", id, 1, 200); err != nil {
		return Withdrawal{}, false, err
	}
	if err := text("reason", reason, 0, 500); err != nil {
		return Withdrawal{}, false, err
	}
	switch action {
	case Approve, Reject, Cancel:
	default:
		return Withdrawal{}, false, apperr.New(apperr.Validation, "unknown action %q", action)
	}
	if memberID != "" {
		// Checked before any replay: a stored answer is another member's data too. A withdrawal's
		// member never changes, so the check cannot go stale.
		if wd, err := w.Get(ctx, id); err != nil {
			return Withdrawal{}, false, err
		} else if wd.MemberID != memberID {
			return Withdrawal{}, false, apperr.New(apperr.NotFound, "no withdrawal %q", id)
		}
	}
	now := w.clock.Now()
	req := idem.Request{Scope: "withdrawal." + string(action), Key: id, Hash: idem.HashOf(struct{ Reason string }{reason})}
	var out Withdrawal
	var replayed bool
	err := w.ledger.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		out, replayed, err = idem.Do(ctx, tx, req, func() (Withdrawal, error) {
			return w.act(ctx, tx, id, action, reason, now)
		})
		return err
	})
	if errors.Is(err, idem.ErrConflict) {
		// The action was done before with another reason. If the withdrawal has moved on since
		// (approved, then cancelled), the state is the better answer than the reason.
		if wd, gerr := w.Get(ctx, id); gerr == nil && wd.Status != resultOf[action] {
			return Withdrawal{}, false, apperr.New(apperr.InvalidState, "withdrawal %q is %s: it cannot be %s", id, wd.Status, pastTense[action])
		}
	}
	return out, replayed, err
}

// resultOf is the status an action leaves a withdrawal in.
var resultOf = map[Action]string{Approve: Approved, Reject: Rejected, Cancel: Cancelled}

func (w *Wallet) act(ctx context.Context, tx pgx.Tx, id string, action Action, reason string, now time.Time) (Withdrawal, error) {
	q := store.New(tx)
	row, err := q.WithdrawalLock(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Withdrawal{}, apperr.New(apperr.NotFound, "no withdrawal %q", id)
	}
	if err != nil {
		return Withdrawal{}, err
	}
	wd, err := withdrawalFromRow(row)
	if err != nil {
		return Withdrawal{}, err
	}
	refuse := func(allowed string) error {
		state := wd.Status
		if wd.BatchID != "" && wd.Status == Approved {
			state = "in batch " + wd.BatchID
		}
		return apperr.New(apperr.InvalidState, "withdrawal %q is %s: only %s can be %s", id, state, allowed, pastTense[action])
	}
	switch action {
	case Approve:
		if wd.Status != PendingReview {
			return Withdrawal{}, refuse("a withdrawal pending review")
		}
		if err := q.WithdrawalReview(ctx, sqlc.WithdrawalReviewParams{ID: id, Reason: reason, Now: &now}); err != nil {
			return Withdrawal{}, err
		}
		wd.Status, wd.Reason, wd.ReviewedAt = Approved, reason, &now
		return wd, notify.Write(ctx, tx, note("", wd))
	case Reject:
		if wd.Status != PendingReview {
			return Withdrawal{}, refuse("a withdrawal pending review")
		}
	case Cancel:
		if (wd.Status != PendingReview && wd.Status != Approved) || wd.BatchID != "" {
			return Withdrawal{}, refuse("a withdrawal pending review or approved and not yet in a batch")
		}
	}
	status := resultOf[action]
	entry, err := w.ledger.Post(ctx, tx, ledger.EntryRequest{Key: "withdrawal_" + string(action) + ":" + id, Kind: "withdrawal_return",
		OccurredAt: now, RefersTo: wd.EntryID,
		Metadata: map[string]any{"member_id": wd.MemberID, "withdrawal_id": id, "action": string(action)},
		Postings: []ledger.PostingRequest{
			{Account: ledger.MemberAccount(wd.MemberID, "withdrawing"), Side: ledger.Debit, Amount: wd.Amount},
			{Account: ledger.MemberAccount(wd.MemberID, "available"), Side: ledger.Credit, Amount: wd.Amount},
		}})
	if err != nil {
		return Withdrawal{}, fmt.Errorf("return withdrawal %s: %w", id, err)
	}
	if err := q.WithdrawalSettle(ctx, sqlc.WithdrawalSettleParams{ID: id, Status: status, Reason: reason, Now: &now, EntryID: &entry.ID}); err != nil {
		return Withdrawal{}, err
	}
	if wd.ReviewedAt == nil {
		wd.ReviewedAt = &now
	}
	wd.Status, wd.Reason, wd.SettledAt = status, reason, &now
	return wd, notify.Write(ctx, tx, note("", wd))
}

var pastTense = map[Action]string{Approve: "approved", Reject: "rejected", Cancel: "cancelled"}
