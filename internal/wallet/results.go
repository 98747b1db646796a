package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// ItemResult is the provider's word on one item.
type ItemResult struct {
	ItemID    int64
	Status    string // ItemPaid or ItemFailed
	Reference string // the provider's reference for a payment
	Reason    string // why it failed
}

// ItemOutcome answers one ItemResult: the item as it now stands, or the error that refused the
// result (and changed nothing for that item).
type ItemOutcome struct {
	Item     Item
	Replayed bool
	Err      error
}

// MaxResults is the most results one call may carry.
const MaxResults = 5000

func (r ItemResult) validate() error {
	if r.ItemID <= 0 {
		return apperr.New(apperr.Validation, "item_id must be a positive integer")
	}
	if r.Status != ItemPaid && r.Status != ItemFailed {
		return apperr.New(apperr.Validation, "item %d: status must be paid or failed", r.ItemID)
	}
	if err := text("reference", r.Reference, 0, 200); err != nil {
		return err
	}
	return text("reason", r.Reason, 0, 500)
}

func (r ItemResult) hash() []byte {
	return idem.HashOf(struct{ Status, Reference, Reason string }{r.Status, r.Reference, r.Reason})
}

// ApplyResults settles items of a batch, each exactly once: paid is one entry debiting the member's
// withdrawing (amount) and crediting platform:cash (net) and platform:fee_income (fee); failed
// returns the whole amount to available (no fee). The same result again replays; a different result
// for a settled item is invalid_state; an unknown item or one of another batch is not_found. Each
// result is answered on its own, and all new results are written in one transaction. The batch is
// completed when every item has a result.
func (w *Wallet) ApplyResults(ctx context.Context, batchID string, results []ItemResult) ([]ItemOutcome, error) {
	if len(results) == 0 || len(results) > MaxResults {
		return nil, apperr.New(apperr.Validation, "items must hold 1 to %d results", MaxResults)
	}
	var out []ItemOutcome
	err := w.ledger.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = w.applyResults(ctx, tx, batchID, results)
		return err
	})
	return out, err
}

func (w *Wallet) applyResults(ctx context.Context, tx pgx.Tx, batchID string, results []ItemResult) ([]ItemOutcome, error) {
	q := store.New(tx)
	// Items and withdrawals are locked first, then balance rows by the entries, then the batch row
	// for the completion check. The batch row is locked last and only for that check, so result
	// calls for different items of one batch run side by side; the check is a statement of its own
	// after the lock, so it sees every call that committed before this one got the lock.
	batch, err := q.PayoutBatchGet(ctx, batchID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "no payout batch %q", batchID)
	}
	if err != nil {
		return nil, err
	}
	cur := money.Currency(batch.Currency)
	out := make([]ItemOutcome, len(results))
	ids := make([]int64, 0, len(results))
	for i, r := range results {
		if err := r.validate(); err != nil {
			out[i].Err = err
			continue
		}
		ids = append(ids, r.ItemID)
	}
	rows, err := q.PayoutItemsLock(ctx, sqlc.PayoutItemsLockParams{BatchID: batchID, Ids: ids})
	if err != nil {
		return nil, fmt.Errorf("lock items: %w", err)
	}
	type state struct {
		row     sqlc.PayoutItemsLockRow
		status  string
		hash    []byte
		settled int // index of the result that settles it in this call, or -1
	}
	items := make(map[int64]*state, len(rows))
	for _, r := range rows {
		items[r.ID] = &state{row: r, status: r.Status, hash: r.ResultHash, settled: -1}
	}
	var reqs []ledger.EntryRequest
	var settle sqlc.PayoutItemsSettleParams
	var told []notify.Note // the items' results, sent with their settlement's statement
	now := w.clock.Now()
	for i, r := range results {
		if out[i].Err != nil {
			continue
		}
		it, ok := items[r.ItemID]
		if !ok {
			out[i].Err = apperr.New(apperr.NotFound, "batch %s has no item %d", batchID, r.ItemID)
			continue
		}
		h := r.hash()
		if it.status != ItemPending {
			if bytes.Equal(it.hash, h) {
				out[i].Replayed = true
				continue
			}
			out[i].Err = apperr.New(apperr.InvalidState, "item %d is %s already; a different result is refused", r.ItemID, it.status)
			continue
		}
		amount, err := money.New(it.row.Amount, cur)
		if err != nil {
			return nil, err
		}
		fee, err := money.New(it.row.Fee, cur)
		if err != nil {
			return nil, err
		}
		net, _ := amount.Sub(fee)
		wid, member := it.row.WithdrawalID, it.row.MemberID
		meta := map[string]any{"member_id": member, "withdrawal_id": wid, "batch_id": batchID, "item_id": r.ItemID}
		req := ledger.EntryRequest{OccurredAt: now, Metadata: meta}
		if r.Status == ItemPaid {
			meta["reference"] = r.Reference
			req.Key, req.Kind = "payout:"+wid, "payout"
			req.Postings = []ledger.PostingRequest{
				{Account: ledger.MemberAccount(member, "withdrawing"), Side: ledger.Debit, Amount: amount},
				{Account: ledger.Cash, Side: ledger.Credit, Amount: net},
			}
			if fee.IsPositive() {
				req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.FeeIncome, Side: ledger.Credit, Amount: fee})
			}
		} else {
			meta["reason"] = r.Reason
			req.Key, req.Kind = "payout_failed:"+wid, "payout_failed"
			req.Postings = []ledger.PostingRequest{
				{Account: ledger.MemberAccount(member, "withdrawing"), Side: ledger.Debit, Amount: amount},
				{Account: ledger.MemberAccount(member, "available"), Side: ledger.Credit, Amount: amount},
			}
		}
		reqs = append(reqs, req)
		it.status, it.hash, it.settled = r.Status, h, i
		var dest Destination
		if err := json.Unmarshal(it.row.Destination, &dest); err != nil {
			return nil, fmt.Errorf("item %d destination: %w", r.ItemID, err)
		}
		told = append(told, itemNote(Item{ID: r.ItemID, WithdrawalID: wid, MemberID: member, Destination: dest, Amount: amount,
			Fee: fee, Net: net, Status: r.Status, Reference: r.Reference, Reason: r.Reason}, batchID))
		settle.Ids = append(settle.Ids, r.ItemID)
		settle.Statuses = append(settle.Statuses, r.Status)
		settle.Refs = append(settle.Refs, r.Reference)
		settle.Reasons = append(settle.Reasons, r.Reason)
		settle.Hashes = append(settle.Hashes, h)
	}
	if len(reqs) > 0 {
		entries, err := w.ledger.PostMany(ctx, tx, reqs)
		if err != nil {
			return nil, fmt.Errorf("settle items of %s: %w", batchID, err)
		}
		for _, e := range entries {
			settle.EntryIds = append(settle.EntryIds, e.ID)
		}
		settle.Now = &now
		done := notify.Ahead(ctx, tx, told...)
		if err := q.PayoutItemsSettle(ctx, settle); err != nil {
			return nil, fmt.Errorf("record results of %s: %w", batchID, err)
		}
		if err := done(); err != nil {
			return nil, err
		}
		if _, err := q.PayoutBatchLock(ctx, batchID); err != nil {
			return nil, fmt.Errorf("lock %s: %w", batchID, err)
		}
		completed, err := q.PayoutBatchComplete(ctx, sqlc.PayoutBatchCompleteParams{BatchID: batchID, Now: &now})
		if err != nil {
			return nil, fmt.Errorf("complete %s: %w", batchID, err)
		}
		if completed > 0 {
			// Once per batch: its totals, read back with every item settled.
			b, err := w.batch(ctx, tx, batchID)
			if err != nil {
				return nil, err
			}
			if err := notify.Write(ctx, tx, batchNote(*b)); err != nil {
				return nil, err
			}
		}
	}
	// Answer every accepted or replayed result with its item as it now stands.
	answered, err := q.PayoutItemsByIDs(ctx, sqlc.PayoutItemsByIDsParams{BatchID: batchID, Ids: ids})
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]Item, len(answered))
	for _, r := range answered {
		it, err := itemFromRow(sqlc.PayoutItemsByBatchRow(r))
		if err != nil {
			return nil, err
		}
		byID[it.ID] = it
	}
	for i, r := range results {
		if out[i].Err == nil {
			out[i].Item = byID[r.ItemID]
		}
	}
	return out, nil
}

// ParseItemID reads an item id as the CSV file and JSON carry it.
func ParseItemID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, apperr.New(apperr.Validation, "item_id %q is not a positive integer", s)
	}
	return n, nil
}
