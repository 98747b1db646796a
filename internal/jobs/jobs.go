// Package jobs holds the River job arguments and workers. Workers are thin: they call the domain
// packages. NewClient wires them into a River client that runs inside `rebate serve`.
package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

// SealArgs asks for the hash chain to be extended over every committed entry.
type SealArgs struct{}

// Kind is River's name for the job.
func (SealArgs) Kind() string { return "ledger.seal" }

// InsertOpts make one pending seal job at most: sealing is a catch-up, never a backlog of jobs.
func (SealArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}}
}

// SealWorker seals behind the write path.
type SealWorker struct {
	river.WorkerDefaults[SealArgs]
	Ledger *ledger.Ledger
}

// Work seals until caught up.
func (w *SealWorker) Work(ctx context.Context, job *river.Job[SealArgs]) error {
	_, err := w.Ledger.SealAll(ctx)
	return err
}

// ReleaseArgs ends an order's hold: what is left of its rebates moves from held to available.
// It is inserted exactly once, by the transaction that records the order's accrual (a retried
// transaction rolls its job back with it), and the release itself is idempotent, so the job carries
// no unique options: River's unique-key bookkeeping cost ~0.2 ms of every event's transaction.
type ReleaseArgs struct {
	OrderID string `json:"order_id"`
}

// Kind is River's name for the job.
func (ReleaseArgs) Kind() string { return "rebate.release" }

// ReleaseWorker runs the engine's release; it is idempotent, so River's retries are safe.
type ReleaseWorker struct {
	river.WorkerDefaults[ReleaseArgs]
	Engine *rebate.Engine
}

// Work releases the order.
func (w *ReleaseWorker) Work(ctx context.Context, job *river.Job[ReleaseArgs]) error {
	return w.Engine.Release(ctx, job.Args.OrderID)
}

// ReleaseScheduler is the engine's Scheduler: River jobs inserted in the engine's transaction, all
// of a batch's in one InsertManyTx.
func ReleaseScheduler(rc *river.Client[pgx.Tx]) rebate.Scheduler {
	return func(ctx context.Context, tx pgx.Tx, releases []rebate.Release) error {
		params := make([]river.InsertManyParams, len(releases))
		for i, r := range releases {
			params[i] = river.InsertManyParams{Args: ReleaseArgs{OrderID: r.OrderID}, InsertOpts: &river.InsertOpts{ScheduledAt: r.At}}
		}
		_, err := rc.InsertManyTx(ctx, tx, params)
		return err
	}
}

// ExpirePointsArgs expires points lots past their validity.
type ExpirePointsArgs struct{}

// Kind is River's name for the job.
func (ExpirePointsArgs) Kind() string { return "rebate.expire_points" }

// InsertOpts: one pending run at a time.
func (ExpirePointsArgs) InsertOpts() river.InsertOpts { return SealArgs{}.InsertOpts() }

// ExpirePointsWorker expires in batches until nothing expired is left.
type ExpirePointsWorker struct {
	river.WorkerDefaults[ExpirePointsArgs]
	Engine *rebate.Engine
}

// Work expires what is due.
func (w *ExpirePointsWorker) Work(ctx context.Context, job *river.Job[ExpirePointsArgs]) error {
	for {
		n, err := w.Engine.ExpirePoints(ctx, w.Engine.Now(), 500)
		if err != nil || n < 500 {
			return err
		}
	}
}

// Config says how the River client runs.
type Config struct {
	// Workers false makes an insert-only client (API processes that scale separately).
	Workers    bool
	SealEvery  time.Duration
	MaxWorkers int
	Logger     *slog.Logger
	// Wallet, when set, gets its batch submission and payout jobs (and Simulated, when it is the
	// wallet's provider, its reporting job).
	Wallet    *wallet.Wallet
	Simulated *simulated.Provider
	// PayoutEvery is how often a batch is cut per currency (0: never by itself); PayoutBatchMax is
	// the most items a batch holds (default 5,000).
	PayoutEvery    time.Duration
	PayoutBatchMax int
	// Checker, when set, runs every CheckEvery (default 10 s) over what was sealed since its last run.
	Checker    *audit.Checker
	CheckEvery time.Duration
	// Campaigns, when set, gets its award and release jobs.
	Campaigns *campaign.Service
	// Webhooks, when set, sends the outbox's deliveries every WebhookEvery (default 1 s).
	Webhooks     *notify.Dispatcher
	WebhookEvery time.Duration
	// WebhookRetention is how long settled deliveries are kept (0: 30 days); pruned hourly.
	WebhookRetention time.Duration
}

// NewClient builds the River client with every worker registered and the periodic jobs set.
// It also wires the engine's release scheduler to the new client.
func NewClient(pool *pgxpool.Pool, l *ledger.Ledger, engine *rebate.Engine, cfg Config) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &SealWorker{Ledger: l})
	river.AddWorker(workers, &ReleaseWorker{Engine: engine})
	river.AddWorker(workers, &ExpirePointsWorker{Engine: engine})
	if cfg.Wallet != nil {
		river.AddWorker(workers, &CutPayoutsWorker{Wallet: cfg.Wallet, Max: cfg.PayoutBatchMax})
		river.AddWorker(workers, &SubmitBatchWorker{Wallet: cfg.Wallet})
		river.AddWorker(workers, &SimulatedReportWorker{Wallet: cfg.Wallet})
	}
	if cfg.Checker != nil {
		river.AddWorker(workers, &CheckWorker{Checker: cfg.Checker})
	}
	if cfg.WebhookRetention <= 0 {
		cfg.WebhookRetention = 30 * 24 * time.Hour
	}
	if cfg.Webhooks != nil {
		river.AddWorker(workers, &DispatchWebhooksWorker{Dispatcher: cfg.Webhooks})
		river.AddWorker(workers, &PruneWebhooksWorker{Pool: pool, Retention: cfg.WebhookRetention})
	}
	if cfg.Campaigns != nil {
		river.AddWorker(workers, &CampaignAwardWorker{Campaigns: cfg.Campaigns})
		river.AddWorker(workers, &CampaignReleaseWorker{Campaigns: cfg.Campaigns})
	}
	rc := &river.Config{Workers: workers, Logger: cfg.Logger}
	if cfg.Workers {
		if cfg.SealEvery <= 0 {
			cfg.SealEvery = time.Second
		}
		if cfg.MaxWorkers <= 0 {
			cfg.MaxWorkers = 10
		}
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}}
		rc.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SealEvery), func() (river.JobArgs, *river.InsertOpts) {
				return SealArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Minute), func() (river.JobArgs, *river.InsertOpts) {
				return ExpirePointsArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
		}
		if cfg.Checker != nil {
			if cfg.CheckEvery <= 0 {
				cfg.CheckEvery = 10 * time.Second
			}
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.CheckEvery),
				func() (river.JobArgs, *river.InsertOpts) { return CheckArgs{}, nil }, nil))
		}
		if cfg.Webhooks != nil {
			if cfg.WebhookEvery <= 0 {
				cfg.WebhookEvery = time.Second
			}
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.WebhookEvery),
				func() (river.JobArgs, *river.InsertOpts) { return DispatchWebhooksArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
				river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
					func() (river.JobArgs, *river.InsertOpts) { return PruneWebhooksArgs{}, nil }, nil))
		}
		if cfg.Wallet != nil && cfg.PayoutEvery > 0 {
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.PayoutEvery),
				func() (river.JobArgs, *river.InsertOpts) { return CutPayoutsArgs{}, nil }, nil))
		}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, err
	}
	engine.SetScheduler(ReleaseScheduler(client))
	if cfg.Campaigns != nil {
		cfg.Campaigns.SetScheduler(campaignScheduler{client})
	}
	if cfg.Wallet != nil {
		cfg.Wallet.SetSubmitScheduler(func(ctx context.Context, tx pgx.Tx, batchID string) error {
			_, err := client.InsertTx(ctx, tx, SubmitBatchArgs{BatchID: batchID}, nil)
			return err
		})
	}
	if cfg.Simulated != nil {
		cfg.Simulated.SetReporter(func(ctx context.Context, batchID string, delay time.Duration) error {
			_, err := client.Insert(ctx, SimulatedReportArgs{BatchID: batchID}, &river.InsertOpts{ScheduledAt: time.Now().Add(delay)})
			return err
		})
	}
	return client, nil
}
