package rebate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

func grantPointsLot(ctx context.Context, q *store.Queries, member, source, ref string, points int64, from time.Time, validity time.Duration) error {
	if points <= 0 {
		return nil
	}
	return q.PointsLotInsert(ctx, sqlc.PointsLotInsertParams{MemberID: member, Source: source, SourceRef: ref, Amount: points,
		ValidFrom: from, ExpiresAt: from.Add(validity)})
}

// Redemption is a POST /v1/members/{id}/points/redemptions body.
type Redemption struct {
	ID     string
	Points int64
	Reason string
}

// Spent is how much one lot gave to a redemption.
type Spent struct {
	LotID  int64 `json:"lot_id"`
	Points int64 `json:"points"`
}

// RedemptionResult is the answer to a redemption; a replay answers the same, byte for byte.
type RedemptionResult struct {
	ID        string    `json:"id"`
	MemberID  string    `json:"member_id"`
	Points    int64     `json:"points"`
	Reason    string    `json:"reason"`
	EntryID   int64     `json:"entry_id"`
	Spent     []Spent   `json:"spent"`
	CreatedAt time.Time `json:"created_at"`
}

// Redeem spends a member's available points, oldest expiry first, exactly once per redemption id
// (idem.Do: a concurrent duplicate waits for the first and replays its answer).
func (e *Engine) Redeem(ctx context.Context, memberID string, r Redemption, now time.Time) (RedemptionResult, bool, error) {
	if err := validID("id", r.ID); err != nil {
		return RedemptionResult{}, false, err
	}
	if r.Points <= 0 {
		return RedemptionResult{}, false, fmt.Errorf("%w: points must be a positive whole number", ErrValidation)
	}
	if len(r.Reason) > 500 {
		return RedemptionResult{}, false, fmt.Errorf("%w: reason is at most 500 characters", ErrValidation)
	}
	if err := validText("reason", r.Reason); err != nil {
		return RedemptionResult{}, false, err
	}
	now = now.Truncate(time.Microsecond)
	req := idem.Request{Scope: "redemption", Key: r.ID, Hash: idem.HashOf(struct {
		Member string
		Points int64
		Reason string
	}{memberID, r.Points, r.Reason})}
	var out RedemptionResult
	var replayed bool
	err := e.ledger.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		out, replayed, err = idem.Do(ctx, tx, req, func() (RedemptionResult, error) {
			return e.redeem(ctx, tx, memberID, r, req.Hash, now)
		})
		return err
	})
	return out, replayed, err
}

func (e *Engine) redeem(ctx context.Context, tx pgx.Tx, memberID string, r Redemption, hash []byte, now time.Time) (RedemptionResult, error) {
	q := store.New(tx)
	if _, err := q.MemberLock(ctx, memberID); errors.Is(err, pgx.ErrNoRows) {
		return RedemptionResult{}, fmt.Errorf("%w: member %q", ErrNotFound, memberID)
	} else if err != nil {
		return RedemptionResult{}, err
	}
	lots, err := q.PointsLotsSpendable(ctx, sqlc.PointsLotsSpendableParams{MemberID: memberID, Now: now})
	if err != nil {
		return RedemptionResult{}, err
	}
	left := r.Points
	spent := []Spent{}
	for _, l := range lots {
		if left == 0 {
			break
		}
		take := min(l.Remaining, left)
		if err := q.PointsLotSpend(ctx, sqlc.PointsLotSpendParams{ID: l.ID, Points: take}); err != nil {
			return RedemptionResult{}, err
		}
		spent = append(spent, Spent{LotID: l.ID, Points: take})
		left -= take
	}
	if left > 0 {
		return RedemptionResult{}, fmt.Errorf("%w: %d unexpired points available, %d asked", ErrInsufficientPoints, r.Points-left, r.Points)
	}
	entry, err := e.ledger.Post(ctx, tx, ledger.EntryRequest{Key: "redemption:" + r.ID, Kind: "redemption", OccurredAt: now,
		Metadata: map[string]any{"member_id": memberID, "redemption_id": r.ID, "reason": r.Reason},
		Postings: []ledger.PostingRequest{
			{Account: ledger.MemberAccount(memberID, "available"), Side: ledger.Debit, Amount: points(r.Points)},
			{Account: ledger.PointsRedeemed, Side: ledger.Credit, Amount: points(r.Points)},
		}})
	if err != nil {
		return RedemptionResult{}, err
	}
	body, _ := json.Marshal(spent)
	if err := q.RedemptionInsert(ctx, sqlc.RedemptionInsertParams{ID: r.ID, MemberID: memberID, Points: r.Points, Reason: r.Reason,
		RequestHash: hash, EntryID: entry.ID, Spent: body}); err != nil {
		return RedemptionResult{}, err
	}
	return RedemptionResult{ID: r.ID, MemberID: memberID, Points: r.Points, Reason: r.Reason, EntryID: entry.ID, Spent: spent, CreatedAt: now}, nil
}

// ExpirePoints expires what is left of every lot past its validity, up to max lots, one entry per
// lot (debit the member's available points, credit platform:points_expired). It never takes a
// member's available points below zero: points a clawback already took back cannot expire again.
func (e *Engine) ExpirePoints(ctx context.Context, now time.Time, max int) (int, error) {
	n := 0
	err := e.ledger.Transact(ctx, func(tx pgx.Tx) error {
		n = 0
		q := store.New(tx)
		lots, err := q.PointsLotsExpiring(ctx, sqlc.PointsLotsExpiringParams{Now: now, MaxLots: int32(max)})
		if err != nil {
			return err
		}
		var notes []notify.Note
		for _, l := range lots {
			// Read in this transaction: an earlier lot of the same member may have expired
			// points a moment ago, in this same run.
			avail, err := e.ledger.BalanceIn(ctx, tx, ledger.MemberAccount(l.MemberID, "available"), "PTS")
			if err != nil {
				return err
			}
			expire := min(l.Remaining, max64(avail.Decimal().IntPart(), 0))
			if err := q.PointsLotExpire(ctx, sqlc.PointsLotExpireParams{ID: l.ID, Now: &now}); err != nil {
				return err
			}
			n++
			if expire == 0 {
				continue
			}
			entry, err := e.ledger.Post(ctx, tx, ledger.EntryRequest{Key: "expiry:" + strconv.FormatInt(l.ID, 10), Kind: "expiry", OccurredAt: l.ExpiresAt,
				Metadata: map[string]any{"member_id": l.MemberID, "points_lot": l.ID},
				Postings: []ledger.PostingRequest{
					{Account: ledger.MemberAccount(l.MemberID, "available"), Side: ledger.Debit, Amount: points(expire)},
					{Account: ledger.PointsExpired, Side: ledger.Credit, Amount: points(expire)},
				}})
			if err != nil {
				return err
			}
			notes = append(notes, notify.Note{Type: notify.PointsExpired, Data: PointsExpiredNote{MemberID: l.MemberID, Points: expire, EntryID: entry.ID}})
		}
		return notify.Write(ctx, tx, notes...)
	})
	return n, err
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
