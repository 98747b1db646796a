package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebate-ledger/rebate/internal/campaign"
)

// CampaignAwardArgs pays a campaign's prizes at its end. It is inserted by the transaction that
// creates the campaign, scheduled at ends_at; the award itself is idempotent.
type CampaignAwardArgs struct {
	CampaignID string `json:"campaign_id"`
}

// Kind is River's name for the job.
func (CampaignAwardArgs) Kind() string { return "campaign.award" }

// CampaignAwardWorker runs the award.
type CampaignAwardWorker struct {
	river.WorkerDefaults[CampaignAwardArgs]
	Campaigns *campaign.Service
}

// Work awards the campaign; run early (a clock behind the database's), it waits and runs again.
func (w *CampaignAwardWorker) Work(ctx context.Context, job *river.Job[CampaignAwardArgs]) error {
	err := w.Campaigns.Award(ctx, job.Args.CampaignID)
	if errors.Is(err, campaign.ErrNotDue) {
		return river.JobSnooze(time.Second)
	}
	return err
}

// CampaignReleaseArgs releases a campaign's held prizes after the program's hold period.
type CampaignReleaseArgs struct {
	CampaignID string `json:"campaign_id"`
}

// Kind is River's name for the job.
func (CampaignReleaseArgs) Kind() string { return "campaign.release" }

// CampaignReleaseWorker runs the release; it is idempotent.
type CampaignReleaseWorker struct {
	river.WorkerDefaults[CampaignReleaseArgs]
	Campaigns *campaign.Service
}

// Work releases the prizes.
func (w *CampaignReleaseWorker) Work(ctx context.Context, job *river.Job[CampaignReleaseArgs]) error {
	err := w.Campaigns.ReleasePrizes(ctx, job.Args.CampaignID)
	if errors.Is(err, campaign.ErrNotDue) {
		return river.JobSnooze(time.Second)
	}
	return err
}

// campaignScheduler is the campaign service's Scheduler: River jobs in the caller's transaction.
type campaignScheduler struct{ rc *river.Client[pgx.Tx] }

var onePending = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}}

func (s campaignScheduler) Award(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	_, err := s.rc.InsertTx(ctx, tx, CampaignAwardArgs{CampaignID: id}, &river.InsertOpts{ScheduledAt: at, UniqueOpts: onePending})
	return err
}

func (s campaignScheduler) Release(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	_, err := s.rc.InsertTx(ctx, tx, CampaignReleaseArgs{CampaignID: id}, &river.InsertOpts{ScheduledAt: at, UniqueOpts: onePending})
	return err
}
