// Package campaign runs the program's competitions: leaderboards that rank members over a period
// (who invited, converted or earned the most), and campaigns whose prizes are paid once, after they
// end, as journal entries held and released like rebates.
package campaign

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// The metrics a board ranks by.
const (
	// Invited counts the members who registered in the period with the member as their inviter.
	Invited = "invited"
	// Converted counts the member's invitees whose first paid order occurred in the period.
	Converted = "converted"
	// Earned sums the cash rebates (every leg, net of what refunds have clawed back so far) of the
	// orders that occurred in the period, in the program's currency.
	Earned = "earned"
)

// Metrics lists the metrics.
var Metrics = []string{Invited, Converted, Earned}

// MaxPeriod is the longest period a board or campaign covers.
const MaxPeriod = 400 * 24 * time.Hour

// Standing is one member's place on a board. ReachedAt is when the member reached its figure (the
// time of the last sign-up, conversion or order that counted): who reached a tied figure first
// ranks first, then the member id.
type Standing struct {
	Rank      int64     `json:"rank"`
	MemberID  string    `json:"member_id"`
	Figure    string    `json:"figure"`
	ReachedAt time.Time `json:"reached_at"`
}

// Board is a leaderboard over [From, To).
type Board struct {
	Metric   string     `json:"metric"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Currency string     `json:"currency,omitempty"`
	Items    []Standing `json:"items"`
	// Me is the asking member's own standing (a member token's), wherever it ranks; nil when the
	// member has no figure in the period, and for other callers.
	Me *Standing `json:"me,omitempty"`
}

// Query asks for a board.
type Query struct {
	Metric   string
	From, To time.Time
	Limit    int
	// Me names the member whose own standing is answered too.
	Me string
}

// Service is the leaderboards and campaigns.
type Service struct {
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	clock    clock.Clock
	schedule Scheduler
}

// Scheduler inserts, in the caller's transaction, the jobs that award a campaign at its end and
// release its prizes after the hold. internal/jobs provides it (River's InsertTx).
type Scheduler interface {
	Award(ctx context.Context, tx pgx.Tx, campaignID string, at time.Time) error
	Release(ctx context.Context, tx pgx.Tx, campaignID string, at time.Time) error
}

// New returns the service on the system clock; SetScheduler must be called before campaigns are
// created.
func New(pool *pgxpool.Pool, l *ledger.Ledger) *Service {
	return &Service{pool: pool, ledger: l, clock: clock.System{}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(c clock.Clock) { s.clock = c }

// SetScheduler wires the award and release jobs.
func (s *Service) SetScheduler(sc Scheduler) { s.schedule = sc }

func validMetric(m string) error {
	for _, x := range Metrics {
		if m == x {
			return nil
		}
	}
	return apperr.New(apperr.Validation, "metric must be invited, converted or earned")
}

func validPeriod(from, to time.Time) error {
	if from.IsZero() || to.IsZero() {
		return apperr.New(apperr.Validation, "from and to are required (RFC 3339 instants)")
	}
	if !to.After(from) {
		return apperr.New(apperr.Validation, "to must be after from")
	}
	if to.Sub(from) > MaxPeriod {
		return apperr.New(apperr.Validation, "a period is at most 400 days")
	}
	return nil
}

// Leaderboard answers a board.
func (s *Service) Leaderboard(ctx context.Context, q Query) (Board, error) {
	if err := validMetric(q.Metric); err != nil {
		return Board{}, err
	}
	if err := validPeriod(q.From, q.To); err != nil {
		return Board{}, err
	}
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Limit > 500 {
		return Board{}, apperr.New(apperr.Validation, "limit is at most 500")
	}
	cur, err := s.currency(ctx, s.pool)
	if err != nil {
		return Board{}, err
	}
	rows, err := standings(ctx, store.New(s.pool), q, cur)
	if err != nil {
		return Board{}, err
	}
	b := Board{Metric: q.Metric, From: q.From.UTC(), To: q.To.UTC(), Items: []Standing{}}
	if q.Metric == Earned {
		b.Currency = string(cur)
	}
	for _, r := range rows {
		if r.Rank <= int64(q.Limit) {
			b.Items = append(b.Items, r)
		}
		if q.Me != "" && r.MemberID == q.Me {
			me := r
			b.Me = &me
		}
	}
	return b, nil
}

// currency is the program's currency now (what earned is counted in and prizes are paid in).
func (s *Service) currency(ctx context.Context, db store.DBTX) (money.Currency, error) {
	p, err := s.programNow(ctx, db)
	if err != nil {
		return "", err
	}
	return p.Rules.Currency, nil
}

func (s *Service) programNow(ctx context.Context, db store.DBTX) (program.Program, error) {
	now := s.clock.Now()
	row, err := store.New(db).ProgramAt(ctx, now)
	if errors.Is(err, pgx.ErrNoRows) {
		return program.Program{}, apperr.New(apperr.Validation, "no program is in force at %s", now.Format(time.RFC3339))
	}
	if err != nil {
		return program.Program{}, err
	}
	return program.FromStored(row.Version, row.EffectiveAt, row.Rules)
}

// standings runs the metric's query: the top q.Limit and q.Me's row.
func standings(ctx context.Context, q *store.Queries, b Query, cur money.Currency) ([]Standing, error) {
	var out []Standing
	add := func(member string, figure decimal.Decimal, at time.Time, rank int64) {
		f := figure.String()
		if b.Metric == Earned {
			f = money.FormatFixed(figure, cur.Scale())
		}
		out = append(out, Standing{Rank: rank, MemberID: member, Figure: f, ReachedAt: at.UTC()})
	}
	from, to, limit := b.From, b.To, int64(b.Limit)
	switch b.Metric {
	case Invited:
		rows, err := q.LeaderboardInvited(ctx, sqlc.LeaderboardInvitedParams{FromAt: from, ToAt: to, MaxRows: limit, Me: b.Me})
		if err != nil {
			return nil, fmt.Errorf("leaderboard: %w", err)
		}
		for _, r := range rows {
			add(r.MemberID, r.Figure, r.ReachedAt, r.Rank)
		}
	case Converted:
		rows, err := q.LeaderboardConverted(ctx, sqlc.LeaderboardConvertedParams{FromAt: from, ToAt: to, MaxRows: limit, Me: b.Me})
		if err != nil {
			return nil, fmt.Errorf("leaderboard: %w", err)
		}
		for _, r := range rows {
			add(r.MemberID, r.Figure, r.ReachedAt, r.Rank)
		}
	case Earned:
		rows, err := q.LeaderboardEarned(ctx, sqlc.LeaderboardEarnedParams{FromAt: from, ToAt: to, MaxRows: limit, Me: b.Me, Currency: string(cur)})
		if err != nil {
			return nil, fmt.Errorf("leaderboard: %w", err)
		}
		for _, r := range rows {
			add(r.MemberID, r.Figure, r.ReachedAt, r.Rank)
		}
	}
	return out, nil
}
