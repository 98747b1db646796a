package wallet

import (
	"github.com/rebate-ledger/rebate/internal/coalesce"
)

// Coalesce makes Request group concurrent withdrawal requests (internal/coalesce): workers
// transactions at a time, each deciding at most max requests with RequestMany, which answers each
// as if it came alone (a refused request is refused alone; a group whose transaction fails as a
// whole is decided again one by one). The returned stop waits for the queued requests; Request then
// decides each alone again. ADR 0016 has the measurements.
func (w *Wallet) Coalesce(workers, max int) (stop func()) {
	g := coalesce.Start("withdrawals", workers, max, w.RequestMany,
		func(RequestOutcome) bool { return false }, // RequestMany retries a failed group itself
		func(err error) RequestOutcome { return RequestOutcome{Err: err} })
	w.coalesce.Store(g)
	return func() {
		w.coalesce.CompareAndSwap(g, nil)
		g.Stop()
	}
}
