package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/rebate"
)

type redemptionRequest struct {
	ID     string `json:"id"`
	Points int64  `json:"points"`
	Reason string `json:"reason"`
}

func (s *server) postRedemption(c echo.Context) error {
	var req redemptionRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	r, replayed, err := s.cfg.Engine.Redeem(c.Request().Context(), c.Param("id"), rebate.Redemption{ID: req.ID, Points: req.Points, Reason: req.Reason}, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, r)
}
