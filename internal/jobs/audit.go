package jobs

import (
	"context"

	"github.com/riverqueue/river"

	"github.com/rebate-ledger/rebate/internal/audit"
)

// CheckArgs runs the continuous checker over what was sealed since its last run.
type CheckArgs struct{}

// Kind is River's name for the job.
func (CheckArgs) Kind() string { return "audit.check" }

// InsertOpts: one pending run at a time.
func (CheckArgs) InsertOpts() river.InsertOpts { return SealArgs{}.InsertOpts() }

// CheckWorker runs the checker until it has caught up with the chain.
type CheckWorker struct {
	river.WorkerDefaults[CheckArgs]
	Checker *audit.Checker
}

// Work checks.
func (w *CheckWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	for {
		c, err := w.Checker.Run(ctx)
		if err != nil || c == nil || c.Entries < audit.MaxCheckEntries {
			return err
		}
	}
}
