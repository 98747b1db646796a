package jobs

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

// CutPayoutsArgs cuts payout batches of every currency (the periodic payout run).
type CutPayoutsArgs struct{}

// Kind is River's name for the job.
func (CutPayoutsArgs) Kind() string { return "wallet.cut_payouts" }

// InsertOpts: one pending run at a time.
func (CutPayoutsArgs) InsertOpts() river.InsertOpts { return SealArgs{}.InsertOpts() }

// CutPayoutsWorker cuts batches until no approved withdrawal waits, currency by currency.
type CutPayoutsWorker struct {
	river.WorkerDefaults[CutPayoutsArgs]
	Wallet *wallet.Wallet
	Max    int
}

// Work cuts.
func (w *CutPayoutsWorker) Work(ctx context.Context, job *river.Job[CutPayoutsArgs]) error {
	for _, c := range money.Currencies() {
		if c == money.PTS {
			continue
		}
		for {
			b, _, err := w.Wallet.Cut(ctx, wallet.CutRequest{Currency: string(c), Max: w.Max})
			if err != nil {
				return fmt.Errorf("cut %s payouts: %w", c, err)
			}
			if b == nil || (w.Max > 0 && len(b.Items) < w.Max) || (w.Max <= 0 && len(b.Items) < 5000) {
				break
			}
		}
	}
	return nil
}

// SubmitBatchArgs hands a new batch to the payout provider. It is inserted by the transaction that
// cut the batch, so a committed batch always has its submission coming.
type SubmitBatchArgs struct {
	BatchID string `json:"batch_id"`
}

// Kind is River's name for the job.
func (SubmitBatchArgs) Kind() string { return "wallet.submit_batch" }

// SubmitBatchWorker submits; a retry after a crash is safe (providers are idempotent by batch id).
type SubmitBatchWorker struct {
	river.WorkerDefaults[SubmitBatchArgs]
	Wallet *wallet.Wallet
}

// Work submits the batch.
func (w *SubmitBatchWorker) Work(ctx context.Context, job *river.Job[SubmitBatchArgs]) error {
	return w.Wallet.Submit(ctx, job.Args.BatchID)
}

// SimulatedReportArgs reports the SIMULATED provider's results for a batch. Unique by batch id
// (whatever its state, completed included): a batch submitted twice is reported once.
type SimulatedReportArgs struct {
	BatchID string `json:"batch_id"`
}

// Kind is River's name for the job.
func (SimulatedReportArgs) Kind() string { return "wallet.simulated_report" }

// InsertOpts: one job per batch, ever.
func (SimulatedReportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SimulatedReportWorker applies the simulated bank's results through Wallet.ApplyResults, the path
// a real provider's results take; results are idempotent per item, so a retry pays nothing twice.
type SimulatedReportWorker struct {
	river.WorkerDefaults[SimulatedReportArgs]
	Wallet *wallet.Wallet
}

// Work reports.
func (w *SimulatedReportWorker) Work(ctx context.Context, job *river.Job[SimulatedReportArgs]) error {
	b, err := w.Wallet.Batch(ctx, job.Args.BatchID)
	if err != nil {
		return err
	}
	results := simulated.Results(b)
	for len(results) > 0 {
		n := min(len(results), wallet.MaxResults)
		outs, err := w.Wallet.ApplyResults(ctx, b.ID, results[:n])
		if err != nil {
			return err
		}
		for _, o := range outs {
			if o.Err != nil {
				return fmt.Errorf("simulated result refused: %w", o.Err)
			}
		}
		results = results[n:]
	}
	return nil
}
