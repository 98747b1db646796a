package wallet

import (
	"time"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
)

// WithdrawalNote is the data of the withdrawal.* webhook events: the withdrawal as a shop sees it
// (the destination masked: webhooks leave the service, and destinations are personal data).
type WithdrawalNote struct {
	ID          string            `json:"id"`
	MemberID    string            `json:"member_id"`
	Amount      string            `json:"amount"`
	Fee         string            `json:"fee"`
	Net         string            `json:"net"`
	Currency    string            `json:"currency"`
	Status      string            `json:"status"`
	Destination MaskedDestination `json:"destination"`
	RequestedAt *time.Time        `json:"requested_at,omitempty"`
	BatchID     string            `json:"batch_id,omitempty"`
	ItemID      int64             `json:"item_id,omitempty"`
	Reference   string            `json:"reference,omitempty"`
	Reason      string            `json:"reason,omitempty"`
}

// noteTypes is the event a withdrawal's new status is told as.
var noteTypes = map[string]string{
	PendingReview: notify.WithdrawalRequested,
	Approved:      notify.WithdrawalApproved,
	Rejected:      notify.WithdrawalRejected,
	Cancelled:     notify.WithdrawalCancelled,
	Paid:          notify.WithdrawalPaid,
	Failed:        notify.WithdrawalFailed,
}

// note tells what happened to wd: typ, or by default the event its status names.
func note(typ string, wd Withdrawal) notify.Note {
	if typ == "" {
		typ = noteTypes[wd.Status]
	}
	return notify.Note{Type: typ, Data: WithdrawalNote{ID: wd.ID, MemberID: wd.MemberID, Amount: wd.Amount.String(),
		Fee: wd.Fee.String(), Net: wd.Net.String(), Currency: string(wd.Amount.Currency()), Status: wd.Status,
		Destination: wd.Destination.Masked(), RequestedAt: &wd.RequestedAt, BatchID: wd.BatchID, Reason: wd.Reason}}
}

// itemNote tells a payout item's result as its withdrawal's: paid or failed.
func itemNote(it Item, batchID string) notify.Note {
	return notify.Note{Type: noteTypes[it.Status], Data: WithdrawalNote{ID: it.WithdrawalID, MemberID: it.MemberID,
		Amount: it.Amount.String(), Fee: it.Fee.String(), Net: it.Net.String(), Currency: string(it.Amount.Currency()),
		Status: it.Status, Destination: it.Destination.Masked(), BatchID: batchID, ItemID: it.ID,
		Reference: it.Reference, Reason: it.Reason}}
}

// batchNote tells a completed batch's totals.
func batchNote(b Batch) notify.Note {
	n := BatchNote{ID: b.ID, Currency: string(b.Currency), Provider: b.Provider, Items: len(b.Items),
		PaidNet: money.Zero(b.Currency).String(), PaidFee: money.Zero(b.Currency).String()}
	paidNet, paidFee := money.Zero(b.Currency), money.Zero(b.Currency)
	for _, it := range b.Items {
		switch it.Status {
		case ItemPaid:
			n.Paid++
			paidNet, _ = paidNet.Add(it.Net)
			paidFee, _ = paidFee.Add(it.Fee)
		case ItemFailed:
			n.Failed++
		}
	}
	n.PaidNet, n.PaidFee = paidNet.String(), paidFee.String()
	if b.CompletedAt != nil {
		n.Completed = *b.CompletedAt
	}
	return notify.Note{Type: notify.PayoutBatchCompleted, Data: n}
}

// BatchNote is payout_batch.completed's data: the batch's totals once every item has a result.
type BatchNote struct {
	ID        string    `json:"id"`
	Currency  string    `json:"currency"`
	Provider  string    `json:"provider"`
	Items     int       `json:"items"`
	Paid      int       `json:"paid"`
	Failed    int       `json:"failed"`
	PaidNet   string    `json:"paid_net"`
	PaidFee   string    `json:"paid_fee"`
	Completed time.Time `json:"completed_at"`
}
