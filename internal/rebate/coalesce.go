package rebate

import (
	"context"
	"errors"

	"github.com/rebate-ledger/rebate/internal/coalesce"
)

// Coalesce makes Apply group concurrent single events (internal/coalesce): workers transactions
// at a time, each applying at most max events with ApplyBatch. A refused event is refused alone;
// when a group's transaction fails as a whole, its events are applied again one by one. The
// returned stop waits for the queued events to be applied; Apply then applies events alone again.
// ADR 0006 has the measurements and the alternatives.
func (e *Engine) Coalesce(workers, max int) (stop func()) {
	g := e.coalescer(workers, max)
	e.coalesce.Store(g)
	return func() {
		e.coalesce.CompareAndSwap(g, nil)
		g.Stop()
	}
}

func (e *Engine) coalescer(workers, max int) *coalesce.Group[Event, Outcome] {
	return coalesce.Start("events", workers, max, e.ApplyBatch,
		func(o Outcome) bool { return o.Err != nil && !refusal(o.Err) },
		func(err error) Outcome { return Outcome{Err: err} })
}

// refusal reports whether err is the engine refusing one event (its own fault), as opposed to the
// group's transaction failing.
func refusal(err error) bool {
	for _, target := range []error{ErrValidation, ErrUnknownMember, ErrUnsupportedCurrency, ErrRefundExceedsOrder,
		ErrIdempotencyConflict, ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// applyCoalesced is Apply's path when coalescing is on; ok is false when it was stopped meanwhile.
func (e *Engine) applyCoalesced(ctx context.Context, ev Event) (Outcome, bool) {
	g := e.coalesce.Load()
	if g == nil {
		return Outcome{}, false
	}
	return g.Do(ctx, ev)
}
