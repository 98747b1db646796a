// Package notify tells the shop what happened, through signed webhooks: a transactional outbox
// (Write and Queue put notes in the caller's transaction, so a rolled-back change sends nothing and
// a committed one is never lost) and a dispatcher that delivers them at least once, with retries
// and exponential backoff for a day, then marks them dead. Domain packages call Write or Queue;
// they know nothing of endpoints.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// The event types an endpoint can subscribe to.
const (
	MemberRegistered     = "member.registered"
	RebateAccrued        = "rebate.accrued"
	RebateReleased       = "rebate.released"
	RebateClawedBack     = "rebate.clawed_back"
	PointsExpired        = "points.expired"
	WithdrawalRequested  = "withdrawal.requested"
	WithdrawalApproved   = "withdrawal.approved"
	WithdrawalRejected   = "withdrawal.rejected"
	WithdrawalCancelled  = "withdrawal.cancelled"
	WithdrawalPaid       = "withdrawal.paid"
	WithdrawalFailed     = "withdrawal.failed"
	PayoutBatchCompleted = "payout_batch.completed"
	AuditViolation       = "audit.violation"
)

// Types lists every event type, in the order the documentation gives them.
var Types = []string{MemberRegistered, RebateAccrued, RebateReleased, RebateClawedBack, PointsExpired,
	WithdrawalRequested, WithdrawalApproved, WithdrawalRejected, WithdrawalCancelled, WithdrawalPaid,
	WithdrawalFailed, PayoutBatchCompleted, AuditViolation}

// KnownType reports whether t is an event type.
func KnownType(t string) bool { return slices.Contains(Types, t) }

// Note is one thing that happened, to be told to every endpoint subscribed to its type. Data is
// encoded as JSON when the note is written, and sent as the event's "data".
type Note struct {
	Type string
	Data any
}

// params encodes notes for the outbox's one statement.
func params(notes []Note) (sqlc.WebhookNotifyParams, error) {
	p := sqlc.WebhookNotifyParams{EventTypes: make([]string, len(notes)), Datas: make([]string, len(notes))}
	for i, n := range notes {
		if !KnownType(n.Type) {
			return p, fmt.Errorf("notify: unknown event type %q", n.Type)
		}
		b, err := json.Marshal(n.Data)
		if err != nil {
			return p, fmt.Errorf("notify: encode %s: %w", n.Type, err)
		}
		p.EventTypes[i], p.Datas[i] = n.Type, string(b)
	}
	return p, nil
}

// Write puts notes in the outbox, in tx: one statement, which writes a delivery for each note and
// each live endpoint subscribed to its type, and nothing when no endpoint is.
func Write(ctx context.Context, tx pgx.Tx, notes ...Note) error {
	if len(notes) == 0 {
		return nil
	}
	p, err := params(notes)
	if err != nil {
		return err
	}
	if err := store.New(tx).WebhookNotify(ctx, p); err != nil {
		return fmt.Errorf("notify: write the outbox: %w", err)
	}
	return nil
}

// Queue is Write for a pipeline (store.Pipeline's queries): the statement goes with the others, and
// its error comes back from the pipeline's Send. An encoding error is returned at once.
func Queue(ctx context.Context, q *store.Queries, notes ...Note) error {
	if len(notes) == 0 {
		return nil
	}
	p, err := params(notes)
	if err != nil {
		return err
	}
	_ = q.WebhookNotify(ctx, p)
	return nil
}

// Ahead is Write sent with the next statement tx runs, in the same round trip (store.SendAhead):
// a change that already makes a round trip reports itself at no cost in latency. done returns the
// statement's error; call it after that next statement.
func Ahead(ctx context.Context, tx pgx.Tx, notes ...Note) (done func() error) {
	if len(notes) == 0 {
		return func() error { return nil }
	}
	p, err := params(notes)
	if err != nil {
		return func() error { return err }
	}
	return store.SendAhead(ctx, tx, func(q *store.Queries) error { return q.WebhookNotify(ctx, p) })
}
