// Package shopsim is a simulated shop: it plays a referral program's life against a running service
// (a referral forest growing by sign-ups, paid orders with a realistic spread of amounts, refunds
// some of which arrive before their orders or twice, points redemptions, withdrawals with reviews,
// a payout batch, a campaign) and sums up what happened. It talks to the service only through
// internal/apiclient, the client generated from docs/openapi.yaml: it is also the proof that a shop
// can integrate from the published contract alone. `rebate demo` runs it.
package shopsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

	"github.com/rebate-ledger/rebate/internal/apiclient"
)

// Config says what to simulate and where.
type Config struct {
	URL                              string
	ShopKey, OperatorKey, AuditorKey string
	// Members is how many members sign up; Days how many days of orders end now (their business
	// times; orders older than the program's hold are released by the service at once).
	Members, Days int
	// Seed makes a run repeatable (ids still differ per run: they carry the start time).
	Seed uint64
	// Progress gets the progress bars (nil: none); Log gets a line per phase.
	Progress, Log io.Writer
	// CampaignFor is how long the demo's campaign runs from the start (default 20 s): it ranks the
	// sign-ups of the run and is awarded by the service when it ends.
	CampaignFor time.Duration
}

// Summary is what the run did, as the service answered it.
type Summary struct {
	RunID            string
	Members          int
	Orders, Refunds  int
	ParkedRefunds    int
	Replays          int
	GMV              decimal.Decimal
	Currency         string
	RewardsGranted   string
	RewardsClawed    string
	Redemptions      int
	Withdrawals      int
	Approved         int
	Rejected         int
	Paid             int
	PaidNet          decimal.Decimal
	BatchID          string
	CampaignID       string
	CampaignWinners  []string
	CheckerStatus    string
	CheckerCheckedTo int
}

type sim struct {
	mu                sync.Mutex // guards r and sum's counters across the parallel phases
	cfg               Config
	shop, op, auditor *apiclient.ClientWithResponses
	r                 *rand.Rand
	run               string
	currency          apiclient.Currency
	hold              time.Duration
	min, reviewAbove  decimal.Decimal
	max               decimal.Decimal
	members           []string
	invited           []bool   // members[i] joined through an inviter (its orders pay rebates)
	released          []string // orders with rebates past their hold when posted: released at once
	sum               Summary
}

// Run plays the shop. Every request it makes is one a shop or an operator would make; an answer it
// does not expect stops the run with that answer in the error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Members < 10 || cfg.Days < 1 {
		return Summary{}, errors.New("shopsim: at least 10 members and 1 day")
	}
	if cfg.CampaignFor <= 0 {
		cfg.CampaignFor = 20 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	s := &sim{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), run: "sim" + strconv.FormatInt(time.Now().Unix(), 36)}
	var err error
	for _, c := range []struct {
		key string
		out **apiclient.ClientWithResponses
	}{{cfg.ShopKey, &s.shop}, {cfg.OperatorKey, &s.op}, {cfg.AuditorKey, &s.auditor}} {
		if *c.out, err = apiclient.NewBearer(cfg.URL, c.key, 60*time.Second); err != nil {
			return Summary{}, err
		}
	}
	s.sum.RunID = s.run
	for _, phase := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"read the program", s.program},
		{"announce a campaign", s.campaign},
		{"sign members up", s.signUps},
		{"post orders and refunds", s.orders},
		{"redeem points", s.redeem},
		{"request withdrawals", s.withdraw},
		{"review withdrawals", s.review},
		{"pay a batch", s.payout},
		{"wait for the campaign's award", s.award},
		{"read the reports", s.reports},
	} {
		fmt.Fprintf(cfg.Log, "demo: %s\n", phase.name)
		if err := phase.fn(ctx); err != nil {
			return s.sum, fmt.Errorf("%s: %w", phase.name, err)
		}
	}
	return s.sum, nil
}

func (s *sim) bar(total int, what string) *progressbar.ProgressBar {
	if s.cfg.Progress == nil {
		return progressbar.DefaultSilent(int64(total))
	}
	return progressbar.NewOptions(total, progressbar.OptionSetWriter(s.cfg.Progress), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionOnCompletion(func() { fmt.Fprintln(s.cfg.Progress) }))
}

func (s *sim) program(ctx context.Context) error {
	resp, err := s.op.GetProgramWithResponse(ctx)
	if err := apiclient.Expect("GET /v1/program", resp, err, 200); err != nil {
		return err
	}
	p := resp.JSON200
	if p.Currency == nil || p.HoldPeriod == nil || p.Withdrawal == nil || p.Withdrawal.Min == nil || p.Withdrawal.ReviewAbove == nil {
		return errors.New("the program answered without currency, hold_period or withdrawal rules")
	}
	s.currency = *p.Currency
	s.sum.Currency = string(s.currency)
	if s.hold, err = time.ParseDuration(*p.HoldPeriod); err != nil {
		return fmt.Errorf("hold_period %q: %w", *p.HoldPeriod, err)
	}
	s.min = decimal.RequireFromString(*p.Withdrawal.Min)
	s.reviewAbove = decimal.RequireFromString(*p.Withdrawal.ReviewAbove)
	s.max = s.reviewAbove.Mul(decimal.NewFromInt(2))
	if p.Withdrawal.Max != nil {
		s.max = decimal.RequireFromString(*p.Withdrawal.Max)
	}
	return nil
}

// campaign announces a race for sign-ups over the run.
func (s *sim) campaign(ctx context.Context) error {
	now := time.Now().UTC()
	s.sum.CampaignID = s.run + "-invite-race"
	req := apiclient.PostCampaignsJSONRequestBody{Id: s.sum.CampaignID, Metric: "invited", StartsAt: now,
		EndsAt: now.Add(s.cfg.CampaignFor)}
	for rank, amount := range []string{"88.00", "38.00", "18.00"} {
		req.Prizes = append(req.Prizes, struct {
			Amount apiclient.Amount `json:"amount"`
			Rank   int              `json:"rank"`
		}{amount, rank + 1})
	}
	resp, err := s.op.PostCampaignsWithResponse(ctx, req)
	return apiclient.Expect("POST /v1/campaigns", resp, err, 201)
}

// signUps grows the referral forest: a tenth of the members join on their own, the others through
// an earlier member, popular inviters more often (each invitee makes its inviter likelier to be
// picked again). Members are registered in waves whose inviters are all in earlier waves.
func (s *sim) signUps(ctx context.Context) error {
	n := s.cfg.Members
	const wave = 50
	inviter := make([]int, n)
	var picks []int // one entry per member and per (member, invitee): preferential attachment
	for i := range n {
		inviter[i] = -1
		if first := i - i%wave; first > 0 && s.r.IntN(10) > 0 {
			j := picks[s.r.IntN(len(picks))]
			if j >= first { // invited by a member of its own wave, registered at the same time: pick an earlier one
				j = s.r.IntN(first)
			}
			inviter[i] = j
			picks = append(picks, j)
		}
		picks = append(picks, i)
		s.members = append(s.members, fmt.Sprintf("%s-m%d", s.run, i))
		s.invited = append(s.invited, inviter[i] >= 0)
	}
	bar := s.bar(n, "members")
	for start := 0; start < n; start += wave {
		end := min(start+wave, n)
		err := parallel(ctx, 8, end-start, func(k int) error {
			i := start + k
			req := apiclient.PostMembersJSONRequestBody{Id: s.members[i]}
			if j := inviter[i]; j >= 0 {
				ref := s.members[j]
				req.ReferrerId = &ref
			}
			resp, err := s.shop.PostMembersWithResponse(ctx, req)
			if err := apiclient.Expect("POST /v1/members", resp, err, 201); err != nil {
				return err
			}
			_ = bar.Add(1)
			return nil
		})
		if err != nil {
			return err
		}
	}
	s.sum.Members = n
	return nil
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the first error (errgroup:
// the first failure cancels the rest).
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

// amount draws an order amount: log-normal around 120 with a long tail, at most 20,000.
func (s *sim) amount() decimal.Decimal {
	x := math.Exp(math.Log(120) + 0.9*s.r.NormFloat64())
	x = math.Min(math.Max(x, 1), 20000)
	return decimal.NewFromFloat(x).Round(2)
}

type event struct {
	at  time.Time
	ev  apiclient.Event
	dup bool
}

// orders posts the shop's orders and refunds, a hundred events per request, in business-time order
// but for a few refunds sent before their orders (the service parks them) and a few events sent
// twice (the service replays them).
func (s *sim) orders(ctx context.Context) error {
	now := time.Now().UTC()
	span := time.Duration(s.cfg.Days)*24*time.Hour + s.hold
	var evs []event
	for i, m := range s.members {
		// Six in ten members buy, some of them often.
		if s.r.IntN(10) >= 6 {
			continue
		}
		for k := range 1 + int(s.r.ExpFloat64()*1.5) {
			at := now.Add(-time.Duration(s.r.Int64N(int64(span)))).Truncate(time.Second)
			order := fmt.Sprintf("%s-o%d-%d", s.run, i, k)
			amt := s.amount()
			if k == 0 && i%97 == 1 {
				// A few big-ticket orders (a sofa, a laptop for the office): their inviters earn
				// enough for a withdrawal that needs an operator's review.
				amt = decimal.NewFromInt(int64(40000 + s.r.IntN(20000)))
				at = now.Add(-s.hold - time.Duration(1+s.r.IntN(s.cfg.Days))*24*time.Hour)
			}
			var paid apiclient.Event_Data
			_ = paid.FromEventData0(apiclient.EventData0{OrderId: order, MemberId: m, Amount: amt.StringFixed(2), Currency: s.currency})
			evs = append(evs, event{at: at, ev: apiclient.Event{Id: order + "-paid", Type: "order.paid", OccurredAt: at, Data: paid}})
			if s.invited[i] && at.Add(s.hold+time.Minute).Before(now) {
				s.released = append(s.released, order)
			}
			s.sum.Orders++
			s.sum.GMV = s.sum.GMV.Add(amt)
			if s.r.IntN(10) > 0 {
				continue
			}
			// A tenth are refunded, a third of those in full, one to five days later (never in the future).
			refund := amt
			if s.r.IntN(3) > 0 {
				refund = amt.Mul(decimal.NewFromFloat(0.1 + 0.8*s.r.Float64())).Round(2)
			}
			rat := at.Add(time.Duration(1+s.r.IntN(5)) * 24 * time.Hour)
			if rat.After(now) {
				rat = now.Add(-time.Minute)
			}
			var data apiclient.Event_Data
			_ = data.FromEventData1(apiclient.EventData1{OrderId: order, RefundId: order + "-r", Amount: refund.StringFixed(2)})
			r := event{at: rat, ev: apiclient.Event{Id: order + "-refund", Type: "order.refunded", OccurredAt: rat, Data: data}}
			if s.r.IntN(20) == 0 {
				r.at = at.Add(-time.Hour) // the shop's systems sent the refund first
				s.sum.ParkedRefunds++
			}
			evs = append(evs, r)
			s.sum.Refunds++
		}
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].at.Before(evs[b].at) })
	for i := range evs {
		if s.r.IntN(50) == 0 {
			evs = append(evs, event{at: evs[i].at, ev: evs[i].ev, dup: true}) // sent again, later
		}
	}
	bar := s.bar(len(evs), "events")
	var batches [][]event
	for start := 0; start < len(evs); start += 100 {
		batches = append(batches, evs[start:min(start+100, len(evs))])
	}
	// Batches go one after another: a refund must not overtake its order across concurrent
	// requests, except the ones sent first on purpose.
	for _, b := range batches {
		req := apiclient.PostEventsBatchJSONRequestBody{}
		for _, e := range b {
			req.Events = append(req.Events, e.ev)
			if e.dup {
				s.sum.Replays++
			}
		}
		resp, err := s.shop.PostEventsBatchWithResponse(ctx, req)
		if err := apiclient.Expect("POST /v1/events/batch", resp, err, 200); err != nil {
			return err
		}
		if resp.JSON200 == nil || resp.JSON200.Results == nil {
			return errors.New("POST /v1/events/batch: no results")
		}
		for i, r := range *resp.JSON200.Results {
			if r.Status >= 300 {
				return fmt.Errorf("event %s was refused: %s", b[i].ev.Id, string(resp.Body))
			}
		}
		_ = bar.Add(len(b))
	}
	return nil
}
