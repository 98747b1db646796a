// Package simulated is the SIMULATED payout provider: it moves no money anywhere. It stands in for a
// bank in demos and tests: every item is paid after a configurable delay, except items whose
// destination account contains "FAIL", which fail. Its results come back through the same path as
// a real provider's (Wallet.ApplyResults), from a River job, and it counts submissions so tests can
// prove that a batch submitted twice is paid once.
package simulated

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/rebate-ledger/rebate/internal/wallet"
)

// Reporter schedules the job that reports a batch's results after delay. It must be idempotent by
// batch id (internal/jobs inserts a River job unique by its arguments): that is what makes a second
// submission of a batch harmless.
type Reporter func(ctx context.Context, batchID string, delay time.Duration) error

// Provider is the simulated provider.
type Provider struct {
	Delay  time.Duration
	report Reporter

	mu          sync.Mutex
	submissions map[string]int
}

// New is a simulated provider that reports results delay after each submission.
func New(delay time.Duration) *Provider {
	return &Provider{Delay: delay, submissions: map[string]int{}}
}

// SetReporter wires the reporting job (the River client is built after the provider).
func (p *Provider) SetReporter(r Reporter) { p.report = r }

// Name is "simulated".
func (p *Provider) Name() string { return "simulated" }

// Submit counts the submission and schedules the batch's report once per batch id.
func (p *Provider) Submit(ctx context.Context, b wallet.Batch) error {
	p.mu.Lock()
	p.submissions[b.ID]++
	p.mu.Unlock()
	return p.report(ctx, b.ID, p.Delay)
}

// Submissions is how often a batch was submitted to this process's provider.
func (p *Provider) Submissions(batchID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.submissions[batchID]
}

// Results are the simulated bank's answers for a batch's pending items.
func Results(b wallet.Batch) []wallet.ItemResult {
	var out []wallet.ItemResult
	for _, it := range b.Items {
		if it.Status != wallet.ItemPending {
			continue
		}
		if strings.Contains(it.Destination.Account, "FAIL") {
			out = append(out, wallet.ItemResult{ItemID: it.ID, Status: wallet.ItemFailed, Reason: "simulated: the account refused the payment"})
			continue
		}
		out = append(out, wallet.ItemResult{ItemID: it.ID, Status: wallet.ItemPaid, Reference: "SIM-" + it.WithdrawalID})
	}
	return out
}
