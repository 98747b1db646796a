package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
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

func (s *server) apply(c echo.Context, req eventRequest) (rebate.EventResult, error) {
	at, err := time.Parse(time.RFC3339Nano, req.OccurredAt)
	if err != nil {
		return rebate.EventResult{}, validation("occurred_at must be an RFC 3339 time such as 2026-11-01T08:00:00Z")
	}
	return s.cfg.Engine.Apply(c.Request().Context(), rebate.Event{ID: req.ID, Type: req.Type, OccurredAt: at, Data: req.Data})
}

func (s *server) postEvent(c echo.Context) error {
	var req eventRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	res, err := s.apply(c, req)
	if err != nil {
		return err
	}
	return created(c, res.StatusCode, res.Replayed, res)
}

// MaxBatch is the most events one batch may carry.
const MaxBatch = 1000

type batchItem struct {
	Status   int                 `json:"status"`
	Replayed bool                `json:"replayed,omitempty"`
	Result   *rebate.EventResult `json:"result,omitempty"`
	Problem  *Problem            `json:"problem,omitempty"`
}

// postEventBatch applies the events in order, each in its own transaction exactly as a single POST
// would be, so one event's error does not stop the others. (One transaction for the whole batch
// was tried: concurrent batches then hold each other's member rows for the whole batch and
// deadlock; docs/benchmarks.md.)
func (s *server) postEventBatch(c echo.Context) error {
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if len(req.Events) == 0 || len(req.Events) > MaxBatch {
		return validation("events must hold 1 to 1000 events")
	}
	results := make([]batchItem, 0, len(req.Events))
	for _, raw := range req.Events {
		var ev eventRequest
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var res rebate.EventResult
		err := dec.Decode(&ev)
		if err != nil {
			err = validation("malformed event: " + err.Error())
		} else {
			res, err = s.apply(c, ev)
		}
		if err != nil {
			p := toProblem(err, s.cfg.Logger, requestID(c))
			results = append(results, batchItem{Status: p.Status, Problem: &p})
			continue
		}
		results = append(results, batchItem{Status: res.StatusCode, Replayed: res.Replayed, Result: &res})
	}
	return c.JSON(http.StatusOK, struct {
		Results []batchItem `json:"results"`
	}{results})
}
