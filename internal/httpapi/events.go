package httpapi

import (
	"encoding/json"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/rebate"
)

type eventRequest struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

func (s *server) postEvent(c echo.Context) error {
	var req eventRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, req.OccurredAt)
	if err != nil {
		return validation("occurred_at must be an RFC 3339 time such as 2026-11-01T08:00:00Z")
	}
	res, err := s.cfg.Engine.Apply(c.Request().Context(), rebate.Event{ID: req.ID, Type: req.Type, OccurredAt: at, Data: req.Data})
	if err != nil {
		return err
	}
	return created(c, res.StatusCode, res.Replayed, res)
}
