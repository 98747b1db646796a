package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
)

// getLeaderboard ranks members over [from, to) (default: the last 30 days). A member token sees
// the board and, under "me", its own standing.
func (s *server) getLeaderboard(c echo.Context) error {
	to := s.cfg.Clock.Now()
	from := to.Add(-30 * 24 * time.Hour)
	if err := queryTimes(c, map[string]*time.Time{"from": &from, "to": &to}); err != nil {
		return err
	}
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	q := campaign.Query{Metric: c.QueryParam("metric"), From: from, To: to, Limit: limit}
	if p := principal(c); p.Role == auth.Member {
		q.Me = p.MemberID
	}
	b, err := s.cfg.Campaigns.Leaderboard(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

type campaignRequest struct {
	ID       string    `json:"id"`
	Metric   string    `json:"metric"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Prizes   []struct {
		Rank   int    `json:"rank"`
		Amount string `json:"amount"`
	} `json:"prizes"`
}

// postCampaign announces a campaign; its prizes are paid by a job at ends_at.
func (s *server) postCampaign(c echo.Context) error {
	var req campaignRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	r := campaign.Request{ID: req.ID, Metric: req.Metric, StartsAt: req.StartsAt, EndsAt: req.EndsAt}
	for _, p := range req.Prizes {
		r.Prizes = append(r.Prizes, campaign.PrizeRequest{Rank: p.Rank, Amount: p.Amount})
	}
	out, replayed, err := s.cfg.Campaigns.Create(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, out)
}

func (s *server) getCampaign(c echo.Context) error {
	out, err := s.cfg.Campaigns.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
