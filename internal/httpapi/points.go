package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/rebate"
)

type redemptionRequest struct {
	ID     string `json:"id"`
	Points int64  `json:"points"`
	Reason string `json:"reason"`
}

type redemptionJSON struct {
	ID        string         `json:"id"`
	MemberID  string         `json:"member_id"`
	Points    int64          `json:"points"`
	Reason    string         `json:"reason"`
	EntryID   int64          `json:"entry_id"`
	Spent     []rebate.Spent `json:"spent"`
	CreatedAt time.Time      `json:"created_at"`
}

func (s *server) postRedemption(c echo.Context) error {
	var req redemptionRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	r, replayed, err := s.cfg.Engine.Redeem(c.Request().Context(), c.Param("id"), rebate.Redemption{ID: req.ID, Points: req.Points, Reason: req.Reason}, time.Now())
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, redemptionJSON{ID: r.ID, MemberID: r.MemberID, Points: r.Points, Reason: r.Reason,
		EntryID: r.EntryID, Spent: r.Spent, CreatedAt: r.CreatedAt})
}
