package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebate-ledger/rebate/internal/notify"
)

// DispatchWebhooksArgs sends the webhook deliveries that are due (the outbox's relay).
type DispatchWebhooksArgs struct{}

// Kind is River's name for the job.
func (DispatchWebhooksArgs) Kind() string { return "webhooks.dispatch" }

// InsertOpts: one pending run at a time; the periodic job inserts the next.
func (DispatchWebhooksArgs) InsertOpts() river.InsertOpts { return SealArgs{}.InsertOpts() }

// DispatchWebhooksWorker runs the dispatcher until nothing is due. A delivery's own retries are the
// dispatcher's (its backoff and 24-hour limit are per delivery); River retries only the job.
type DispatchWebhooksWorker struct {
	river.WorkerDefaults[DispatchWebhooksArgs]
	Dispatcher *notify.Dispatcher
}

// Work sends what is due.
func (w *DispatchWebhooksWorker) Work(ctx context.Context, job *river.Job[DispatchWebhooksArgs]) error {
	_, err := w.Dispatcher.Run(ctx)
	return err
}

// PruneWebhooksArgs deletes settled webhook deliveries older than the retention.
type PruneWebhooksArgs struct{}

// Kind is River's name for the job.
func (PruneWebhooksArgs) Kind() string { return "webhooks.prune" }

// InsertOpts: one pending run at a time.
func (PruneWebhooksArgs) InsertOpts() river.InsertOpts { return SealArgs{}.InsertOpts() }

// PruneWebhooksWorker runs notify.Prune.
type PruneWebhooksWorker struct {
	river.WorkerDefaults[PruneWebhooksArgs]
	Pool      *pgxpool.Pool
	Retention time.Duration
}

// Work prunes what is past the retention.
func (w *PruneWebhooksWorker) Work(ctx context.Context, job *river.Job[PruneWebhooksArgs]) error {
	_, err := notify.Prune(ctx, w.Pool, time.Now(), w.Retention)
	return err
}
