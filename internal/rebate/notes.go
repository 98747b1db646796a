package rebate

import (
	"github.com/rebate-ledger/rebate/internal/money"
)

// The data of the engine's webhook events (internal/notify); docs/webhooks.md shows each.

// AccruedNote is rebate.accrued's data: an order's rebates, held until their release.
type AccruedNote struct {
	EventID  string         `json:"event_id"`
	OrderID  string         `json:"order_id"`
	MemberID string         `json:"member_id"`
	Amount   money.Amount   `json:"amount"`
	Currency money.Currency `json:"currency"`
	EntryID  int64          `json:"entry_id"`
	Rebates  []Rebate       `json:"rebates"`
}

// Clawback is one beneficiary's leg taken back by a refund, from held or (after release) available.
type Clawback struct {
	MemberID string         `json:"member_id"`
	Leg      string         `json:"leg"`
	Amount   money.Amount   `json:"amount"`
	Currency money.Currency `json:"currency"`
	From     string         `json:"from"`
}

// ClawedBackNote is rebate.clawed_back's data: what a refund took back.
type ClawedBackNote struct {
	EventID      string     `json:"event_id"`
	OrderID      string     `json:"order_id"`
	RefundID     string     `json:"refund_id"`
	RefundAmount string     `json:"refund_amount"`
	EntryID      int64      `json:"entry_id"`
	ClawedBack   []Clawback `json:"clawed_back"`
}

// ReleasedNote is rebate.released's data: what moved from held to available when an order's hold
// ended.
type ReleasedNote struct {
	OrderID  string   `json:"order_id"`
	EntryID  int64    `json:"entry_id"`
	Released []Rebate `json:"released"`
}

// RegisteredNote is member.registered's data: who joined, and who invited them ("your friend
// joined").
type RegisteredNote struct {
	MemberID     string   `json:"member_id"`
	ReferrerID   string   `json:"referrer_id,omitempty"`
	Upline       []string `json:"upline"`
	ReferralCode string   `json:"referral_code"`
}

// PointsExpiredNote is points.expired's data: one member's points lot that expired unspent.
type PointsExpiredNote struct {
	MemberID string `json:"member_id"`
	Points   int64  `json:"points"`
	EntryID  int64  `json:"entry_id"`
}
