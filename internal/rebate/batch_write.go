package rebate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// writeEntries writes the batch's journal entries (those that refer to an accrual of this batch in
// a second step, once its id is known); their balances wait for the writer's Flush. with runs once,
// and the first entries go to the server with its first statement (Writer.AddWith).
func (b *batch) writeEntries(ctx context.Context, jw *ledger.Writer, with func() error) error {
	var first, second []*pendingEntry
	for _, pe := range b.entries {
		if pe.refersTo != nil {
			second = append(second, pe)
		} else {
			first = append(first, pe)
		}
	}
	if len(first) == 0 && len(second) == 0 {
		return with()
	}
	for _, step := range [][]*pendingEntry{first, second} {
		if len(step) == 0 {
			continue
		}
		reqs := make([]ledger.EntryRequest, len(step))
		for i, pe := range step {
			reqs[i] = pe.req
			if pe.refersTo != nil {
				reqs[i].RefersTo = pe.refersTo.id
			}
		}
		written, err := jw.AddWith(ctx, reqs, with)
		with = nil
		if errors.Is(err, ledger.ErrIdempotencyConflict) {
			return fmt.Errorf("%w: %w", errRace, err)
		}
		if err != nil {
			return err
		}
		for i, en := range written {
			if en.Replayed {
				// The reads saw no such order or refund, yet its entry exists: it committed since.
				return fmt.Errorf("%w: entry %s", errRace, en.Key)
			}
			step[i].id = en.ID
		}
	}
	return nil
}

// raceOr turns a unique violation (an order or refund id written by a concurrent transaction since
// the batch read it) into errRace.
func raceOr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %w", errRace, err)
	}
	return err
}

func (b *batch) queueOrders(ctx context.Context, q *store.Queries) {
	var no sqlc.OrderInsertManyParams
	var nl sqlc.LotInsertManyOrdersParams
	var uo sqlc.OrderSetRefundedManyParams
	var ul sqlc.LotSetClawedBackManyParams
	for _, o := range b.newOrders {
		var accrual int64
		if o.accrual != nil {
			accrual = o.accrual.id
		}
		no.OrderIds = append(no.OrderIds, o.OrderID)
		no.EventIds = append(no.EventIds, o.EventID)
		no.MemberIds = append(no.MemberIds, o.MemberID)
		no.Amounts = append(no.Amounts, o.Amount)
		no.Currencies = append(no.Currencies, o.Currency)
		no.OccurredAts = append(no.OccurredAts, o.OccurredAt)
		no.ProgramVersions = append(no.ProgramVersions, o.ProgramVersion)
		no.Uplines = append(no.Uplines, strings.Join(o.Upline, ","))
		no.ReleaseAts = append(no.ReleaseAts, o.ReleaseAt)
		no.AccrualEntryIds = append(no.AccrualEntryIds, accrual)
		no.Refundeds = append(no.Refundeds, o.Refunded)
		no.ExcessRefundeds = append(no.ExcessRefundeds, o.ExcessRefunded)
		no.FirstOrders = append(no.FirstOrders, o.FirstOrder)
	}
	for _, o := range b.orders {
		if !o.isNew && o.dirty {
			uo.OrderIds = append(uo.OrderIds, o.OrderID)
			uo.Refundeds = append(uo.Refundeds, o.Refunded)
			uo.ExcessRefundeds = append(uo.ExcessRefundeds, o.ExcessRefunded)
		}
		for _, l := range o.lots {
			switch {
			case l.isNew:
				nl.OrderIds = append(nl.OrderIds, o.OrderID)
				nl.BeneficiaryIds = append(nl.BeneficiaryIds, l.beneficiary)
				nl.Legs = append(nl.Legs, l.leg)
				nl.Currencies = append(nl.Currencies, l.currency)
				nl.Amounts = append(nl.Amounts, l.amount)
				nl.ClawedBacks = append(nl.ClawedBacks, l.clawed)
				nl.ProgramVersions = append(nl.ProgramVersions, l.version)
				nl.Uplines = append(nl.Uplines, strings.Join(l.upline, ","))
			case l.dirty:
				ul.OrderIds = append(ul.OrderIds, o.OrderID)
				ul.BeneficiaryIds = append(ul.BeneficiaryIds, l.beneficiary)
				ul.Legs = append(ul.Legs, l.leg)
				ul.ClawedBacks = append(ul.ClawedBacks, l.clawed)
			}
		}
	}
	if len(no.OrderIds) > 0 {
		_ = q.OrderInsertMany(ctx, no)
	}
	if len(nl.OrderIds) > 0 {
		_ = q.LotInsertManyOrders(ctx, nl)
	}
	if len(uo.OrderIds) > 0 {
		_ = q.OrderSetRefundedMany(ctx, uo)
	}
	if len(ul.OrderIds) > 0 {
		_ = q.LotSetClawedBackMany(ctx, ul)
	}
}

func entryID(pe *pendingEntry) int64 {
	if pe == nil {
		return 0
	}
	return pe.id
}

func (b *batch) queueRefunds(ctx context.Context, q *store.Queries) {
	var nr sqlc.RefundInsertManyParams
	for _, r := range b.newRefunds {
		nr.RefundIds = append(nr.RefundIds, r.id)
		nr.EventIds = append(nr.EventIds, r.eventID)
		nr.OrderIds = append(nr.OrderIds, r.orderID)
		nr.Amounts = append(nr.Amounts, r.amount)
		nr.Statuses = append(nr.Statuses, r.status)
		nr.EntryIds = append(nr.EntryIds, entryID(r.entry))
	}
	if len(nr.RefundIds) > 0 {
		_ = q.RefundInsertMany(ctx, nr)
	}
	var ur sqlc.RefundSetAppliedManyParams
	for _, r := range b.applied {
		ur.RefundIds = append(ur.RefundIds, r.id)
		ur.EntryIds = append(ur.EntryIds, entryID(r.entry))
	}
	if len(ur.RefundIds) > 0 {
		_ = q.RefundSetAppliedMany(ctx, ur)
	}
}

func (b *batch) queueMembers(ctx context.Context, q *store.Queries) {
	var p sqlc.MemberSetCountersManyParams
	for _, m := range b.members {
		if m.dirty {
			p.Ids = append(p.Ids, m.id)
			p.PaidOrders = append(p.PaidOrders, m.paid)
			p.ConvertedInvitees = append(p.ConvertedInvitees, m.converted)
		}
	}
	if len(p.Ids) > 0 {
		_ = q.MemberSetCountersMany(ctx, p)
	}
}
