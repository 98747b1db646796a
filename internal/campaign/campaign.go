package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Limits of a campaign's prizes.
const (
	MaxPrizes = 100
	MaxRank   = 1000
)

// Campaign statuses.
const (
	Scheduled = "scheduled"
	Awarded   = "awarded"
)

// Prize is what a rank wins.
type Prize struct {
	Rank   int    `json:"rank"`
	Amount string `json:"amount"`
	amount money.Amount
}

func newPrize(rank int, a money.Amount) Prize {
	return Prize{Rank: rank, Amount: a.String(), amount: a}
}

// Winner is a prize paid: to whom, on what figure, by which entry, and its release.
type Winner struct {
	Rank       int        `json:"rank"`
	MemberID   string     `json:"member_id"`
	Figure     string     `json:"figure"`
	Amount     string     `json:"amount"`
	EntryID    int64      `json:"entry_id"`
	ReleaseAt  time.Time  `json:"release_at"`
	ReleasedAt *time.Time `json:"released_at"`
}

// Campaign is a competition over [StartsAt, EndsAt).
type Campaign struct {
	ID        string     `json:"id"`
	Metric    string     `json:"metric"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    time.Time  `json:"ends_at"`
	Currency  string     `json:"currency"`
	Prizes    []Prize    `json:"prizes"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	AwardedAt *time.Time `json:"awarded_at"`
	// Terms is what the campaign promises, in words a member reads.
	Terms string `json:"terms"`
	// Standings are the final board the prizes were paid on (empty until awarded).
	Standings []Standing `json:"standings"`
	Winners   []Winner   `json:"winners"`
}

// Request asks for a campaign.
type Request struct {
	ID       string
	Metric   string
	StartsAt time.Time
	EndsAt   time.Time
	Prizes   []PrizeRequest
}

// PrizeRequest is one prize as the client sends it.
type PrizeRequest struct {
	Rank   int
	Amount string
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)

func terms(metric string) string {
	what := map[string]string{
		Invited:   "the members they invited who registered",
		Converted: "their invitees whose first paid order occurred",
		Earned:    "the cash rebates, net of refunds so far, of the orders that occurred",
	}[metric]
	return "Members are ranked by " + what + " from starts_at to ends_at; a tie goes to whoever reached the figure " +
		"first. The standings are final when the prizes are awarded, as soon as the campaign ends: an event that " +
		"arrives later, and a refund after that (even a full one), does not re-rank it or take a prize back. " +
		"Prizes are held for the program's hold period, like rebates, then become available to withdraw."
}

// Create registers a campaign and schedules its award at its end, in one transaction. The same id
// with the same body replays the first answer; another body is an idempotency_conflict.
func (s *Service) Create(ctx context.Context, r Request) (Campaign, bool, error) {
	if s.schedule == nil {
		return Campaign{}, false, errors.New("campaign: no scheduler wired")
	}
	if !idPattern.MatchString(r.ID) {
		return Campaign{}, false, apperr.New(apperr.Validation, "id must be 1 to 100 letters, digits or _.:-")
	}
	if err := validMetric(r.Metric); err != nil {
		return Campaign{}, false, err
	}
	if err := validPeriod(r.StartsAt, r.EndsAt); err != nil {
		return Campaign{}, false, apperr.New(apperr.Validation, "starts_at and ends_at: %s", apperr.As(err).Detail)
	}
	now := s.clock.Now()
	if !r.EndsAt.After(now) {
		return Campaign{}, false, apperr.New(apperr.Validation, "ends_at must be in the future: a campaign is announced before it ends")
	}
	if len(r.Prizes) == 0 || len(r.Prizes) > MaxPrizes {
		return Campaign{}, false, apperr.New(apperr.Validation, "prizes must hold 1 to %d prizes", MaxPrizes)
	}
	req := idem.Request{Scope: "campaign", Key: r.ID, Hash: idem.HashOf(struct {
		Metric       string
		Starts, Ends string
		Prizes       []PrizeRequest
	}{r.Metric, r.StartsAt.UTC().Format(time.RFC3339Nano), r.EndsAt.UTC().Format(time.RFC3339Nano), r.Prizes})}
	var out Campaign
	var replayed bool
	err := s.ledger.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		out, replayed, err = idem.Do(ctx, tx, req, func() (Campaign, error) { return s.create(ctx, tx, r, now) })
		return err
	})
	return out, replayed, err
}

func (s *Service) create(ctx context.Context, tx pgx.Tx, r Request, now time.Time) (Campaign, error) {
	cur, err := s.currency(ctx, tx)
	if err != nil {
		return Campaign{}, err
	}
	prizes := make([]Prize, 0, len(r.Prizes))
	seen := map[int]bool{}
	for i, p := range r.Prizes {
		if p.Rank < 1 || p.Rank > MaxRank {
			return Campaign{}, apperr.New(apperr.Validation, "prizes[%d].rank must be 1 to %d", i, MaxRank)
		}
		if seen[p.Rank] {
			return Campaign{}, apperr.New(apperr.Validation, "prizes[%d]: rank %d has a prize already", i, p.Rank)
		}
		seen[p.Rank] = true
		a, err := money.Parse(p.Amount, cur)
		if err != nil {
			return Campaign{}, apperr.New(apperr.Validation, "prizes[%d].amount: %v (prizes are paid in the program's %s)", i, err, cur)
		}
		if !a.IsPositive() {
			return Campaign{}, apperr.New(apperr.Validation, "prizes[%d].amount must be positive", i)
		}
		prizes = append(prizes, newPrize(p.Rank, a))
	}
	slices.SortFunc(prizes, func(a, b Prize) int { return a.Rank - b.Rank })
	c := Campaign{ID: r.ID, Metric: r.Metric, StartsAt: r.StartsAt.UTC().Truncate(time.Microsecond),
		EndsAt: r.EndsAt.UTC().Truncate(time.Microsecond), Currency: string(cur), Prizes: prizes, Status: Scheduled,
		CreatedAt: now.UTC(), Terms: terms(r.Metric), Standings: []Standing{}, Winners: []Winner{}}
	body, _ := json.Marshal(prizes)
	err = store.New(tx).CampaignInsert(ctx, sqlc.CampaignInsertParams{ID: c.ID, Metric: c.Metric, StartsAt: c.StartsAt,
		EndsAt: c.EndsAt, Currency: c.Currency, Prizes: body, CreatedAt: c.CreatedAt})
	if store.IsUniqueViolation(err) {
		return Campaign{}, apperr.New(apperr.IdempotencyConflict, "campaign %q exists", c.ID)
	}
	if err != nil {
		return Campaign{}, err
	}
	if err := s.schedule.Award(ctx, tx, c.ID, c.EndsAt); err != nil {
		return Campaign{}, fmt.Errorf("schedule the award of %s: %w", c.ID, err)
	}
	return c, nil
}

// Get answers a campaign with its standings and winners once awarded.
func (s *Service) Get(ctx context.Context, id string) (Campaign, error) {
	row, err := store.New(s.pool).CampaignGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Campaign{}, apperr.New(apperr.NotFound, "no campaign %q", id)
	}
	if err != nil {
		return Campaign{}, err
	}
	prizes, err := store.New(s.pool).CampaignPrizeList(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	return fromRow(row, prizes)
}

func fromRow(row sqlc.Campaign, prizes []sqlc.CampaignPrize) (Campaign, error) {
	c := Campaign{ID: row.ID, Metric: row.Metric, StartsAt: row.StartsAt.UTC(), EndsAt: row.EndsAt.UTC(), Currency: row.Currency,
		Status: row.Status, CreatedAt: row.CreatedAt.UTC(), AwardedAt: row.AwardedAt, Terms: terms(row.Metric),
		Standings: []Standing{}, Winners: []Winner{}}
	var ps []struct {
		Rank   int    `json:"rank"`
		Amount string `json:"amount"`
	}
	if err := json.Unmarshal(row.Prizes, &ps); err != nil {
		return c, fmt.Errorf("campaign %s: prizes: %w", row.ID, err)
	}
	cur := money.Currency(row.Currency)
	for _, p := range ps {
		a, err := money.Parse(p.Amount, cur)
		if err != nil {
			return c, fmt.Errorf("campaign %s: prize %d: %w", row.ID, p.Rank, err)
		}
		c.Prizes = append(c.Prizes, newPrize(p.Rank, a))
	}
	if row.Standings != nil {
		if err := json.Unmarshal(row.Standings, &c.Standings); err != nil {
			return c, fmt.Errorf("campaign %s: standings: %w", row.ID, err)
		}
	}
	for _, p := range prizes {
		c.Winners = append(c.Winners, Winner{Rank: int(p.Rank), MemberID: p.MemberID, Figure: p.Figure.String(),
			Amount: money.FormatFixed(p.Amount, cur.Scale()), EntryID: p.EntryID, ReleaseAt: p.ReleaseAt.UTC(), ReleasedAt: p.ReleasedAt})
	}
	return c, nil
}

// ErrNotDue is returned when a campaign's award or release runs before its time (the job is
// scheduled for it; River runs it again).
var ErrNotDue = errors.New("not due yet")

// Award pays a campaign's prizes once, after it ends: the standings are read in the award's own
// transaction, each prize rank that has a member is one entry (platform:rebate_expense → the
// member's held), the prizes and the final standings are recorded, and the release is scheduled
// after the program's hold period. Running it again changes nothing.
func (s *Service) Award(ctx context.Context, id string) error {
	return s.ledger.Transact(ctx, func(tx pgx.Tx) error {
		q := store.New(tx)
		row, err := q.CampaignLock(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no campaign %q", id)
		}
		if err != nil {
			return err
		}
		if row.Status == Awarded {
			return nil
		}
		now := s.clock.Now()
		if now.Before(row.EndsAt) {
			return fmt.Errorf("award campaign %s before its end %s: %w", id, row.EndsAt.Format(time.RFC3339), ErrNotDue)
		}
		c, err := fromRow(row, nil)
		if err != nil {
			return err
		}
		prog, err := s.programNow(ctx, tx)
		if err != nil {
			return err
		}
		top := c.Prizes[len(c.Prizes)-1].Rank
		board, err := standings(ctx, q, Query{Metric: c.Metric, From: c.StartsAt, To: c.EndsAt, Limit: top}, money.Currency(c.Currency))
		if err != nil {
			return err
		}
		byRank := map[int64]Standing{}
		for _, st := range board {
			byRank[st.Rank] = st
		}
		releaseAt := now.Add(prog.Rules.HoldPeriod)
		var reqs []ledger.EntryRequest
		var winners []Standing
		var paid []Prize
		for _, p := range c.Prizes {
			st, ok := byRank[int64(p.Rank)]
			if !ok {
				continue // fewer members ranked than prizes: the rest are not paid
			}
			reqs = append(reqs, ledger.EntryRequest{Key: "prize:" + id + ":" + strconv.Itoa(p.Rank), Kind: "campaign_prize", OccurredAt: now,
				Metadata: map[string]any{"campaign_id": id, "rank": p.Rank, "metric": c.Metric, "figure": st.Figure},
				Postings: []ledger.PostingRequest{
					{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: p.amount},
					{Account: ledger.MemberAccount(st.MemberID, "held"), Side: ledger.Credit, Amount: p.amount},
				}})
			winners = append(winners, st)
			paid = append(paid, p)
		}
		entries, err := s.ledger.PostMany(ctx, tx, reqs)
		if err != nil {
			return fmt.Errorf("pay the prizes of %s: %w", id, err)
		}
		for i, e := range entries {
			figure, _ := decimal.NewFromString(winners[i].Figure)
			if err := q.CampaignPrizeInsert(ctx, sqlc.CampaignPrizeInsertParams{CampaignID: id, Rank: int32(paid[i].Rank),
				MemberID: winners[i].MemberID, Currency: c.Currency, Amount: paid[i].amount.Decimal(), Figure: figure,
				EntryID: e.ID, ReleaseAt: releaseAt}); err != nil {
				return err
			}
		}
		if board == nil {
			board = []Standing{}
		}
		body, _ := json.Marshal(board)
		if err := q.CampaignSetAwarded(ctx, sqlc.CampaignSetAwardedParams{ID: id, Now: now, Standings: body}); err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		return s.schedule.Release(ctx, tx, id, releaseAt)
	})
}

// ReleasePrizes moves a campaign's held prizes to available, once each, when their hold ends.
func (s *Service) ReleasePrizes(ctx context.Context, id string) error {
	return s.ledger.Transact(ctx, func(tx pgx.Tx) error {
		q := store.New(tx)
		prizes, err := q.CampaignPrizesLockUnreleased(ctx, id)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		for _, p := range prizes {
			if now.Before(p.ReleaseAt) {
				return fmt.Errorf("release the prizes of %s before %s: %w", id, p.ReleaseAt.Format(time.RFC3339), ErrNotDue)
			}
			a, err := money.New(p.Amount, money.Currency(p.Currency))
			if err != nil {
				return err
			}
			e, err := s.ledger.Post(ctx, tx, ledger.EntryRequest{Key: "prize_release:" + id + ":" + strconv.Itoa(int(p.Rank)),
				Kind: "release", OccurredAt: p.ReleaseAt, RefersTo: p.EntryID,
				Metadata: map[string]any{"campaign_id": id, "rank": p.Rank},
				Postings: []ledger.PostingRequest{
					{Account: ledger.MemberAccount(p.MemberID, "held"), Side: ledger.Debit, Amount: a},
					{Account: ledger.MemberAccount(p.MemberID, "available"), Side: ledger.Credit, Amount: a},
				}})
			if err != nil {
				return err
			}
			if err := q.CampaignPrizeSetReleased(ctx, sqlc.CampaignPrizeSetReleasedParams{CampaignID: id, Rank: p.Rank, Now: now, EntryID: e.ID}); err != nil {
				return err
			}
		}
		return nil
	})
}
