package wallet

import (
	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/coalesce"
)

// Coalesce makes Request group concurrent withdrawal requests (internal/coalesce): workers
// transactions at a time, each deciding at most max requests with RequestMany. A refused request is
// refused alone; when a group's transaction fails as a whole (say, two requests of other members
// raced for one id), its requests are decided again one by one. The returned stop waits for the
// queued requests; Request then decides each alone again. ADR 0016 has the measurements.
func (w *Wallet) Coalesce(workers, max int) (stop func()) {
	g := w.coalescer(workers, max)
	w.coalesce.Store(g)
	return func() {
		w.coalesce.CompareAndSwap(g, nil)
		g.Stop()
	}
}

func (w *Wallet) coalescer(workers, max int) *coalesce.Group[WithdrawalRequest, RequestOutcome] {
	return coalesce.Start(workers, max, w.RequestMany,
		func(o RequestOutcome) bool { return o.Err != nil && !refusal(o.Err) },
		func(err error) RequestOutcome { return RequestOutcome{Err: err} })
}

// refusal reports whether err is a request's own answer (its code), as opposed to its group's
// transaction failing.
func refusal(err error) bool {
	code, ok := apperr.CodeOf(err)
	return ok && code != apperr.Unavailable
}
