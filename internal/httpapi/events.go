package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

type eventRequest struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

func toEvent(req eventRequest) (rebate.Event, error) {
	at, err := time.Parse(time.RFC3339Nano, req.OccurredAt)
	if err != nil {
		return rebate.Event{}, validation("occurred_at must be an RFC 3339 time such as 2026-11-01T08:00:00Z")
	}
	return rebate.Event{ID: req.ID, Type: req.Type, OccurredAt: at, Data: req.Data}, nil
}

func (s *server) postEvent(c echo.Context) error {
	var req eventRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	ev, err := toEvent(req)
	if err != nil {
		return err
	}
	res, err := s.cfg.Engine.Apply(c.Request().Context(), ev)
	if err != nil {
		return err
	}
	return created(c, eventStatus(res), res.Replayed, res)
}

// eventStatus is the HTTP status of an event's outcome: a parked refund is accepted, not applied.
func eventStatus(res rebate.EventResult) int {
	if res.Status == rebate.Parked {
		return http.StatusAccepted
	}
	return http.StatusCreated
}

// MaxBatch is the most events one batch may carry.
const MaxBatch = 1000

type batchItem struct {
	Status   int                 `json:"status"`
	Replayed bool                `json:"replayed,omitempty"`
	Result   *rebate.EventResult `json:"result,omitempty"`
	Problem  *Problem            `json:"problem,omitempty"`
}

// postEventBatch applies the events in order with the engine's batch (one transaction for all,
// unless an id repeats), each answered on its own: one event's error does not stop the others.
func (s *server) postEventBatch(c echo.Context) error {
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	// Each event is checked on its own (decodeEvent): one bad event does not refuse its batch.
	if err := decodeAny(body, &req); err != nil {
		return err
	}
	if len(req.Events) == 0 || len(req.Events) > MaxBatch {
		return validation("events must hold 1 to 1000 events")
	}
	results := make([]batchItem, len(req.Events))
	var evs []rebate.Event
	var at []int
	for i, raw := range req.Events {
		ev, err := decodeEvent(raw)
		if err != nil {
			p := toProblem(err, s.cfg.Logger, requestID(c))
			results[i] = batchItem{Status: p.Status, Problem: &p}
			continue
		}
		evs = append(evs, ev)
		at = append(at, i)
	}
	for k, o := range s.cfg.Engine.ApplyBatch(c.Request().Context(), evs) {
		if o.Err != nil {
			p := toProblem(o.Err, s.cfg.Logger, requestID(c))
			results[at[k]] = batchItem{Status: p.Status, Problem: &p}
			continue
		}
		res := o.Result
		results[at[k]] = batchItem{Status: eventStatus(res), Replayed: res.Replayed, Result: &res}
	}
	return c.JSON(http.StatusOK, struct {
		Results []batchItem `json:"results"`
	}{results})
}

// decodeEvent reads one event of a batch strictly.
func decodeEvent(raw json.RawMessage) (rebate.Event, error) {
	if hasNUL(raw) {
		return rebate.Event{}, validation("strings must not contain the NUL character (\\u0000)")
	}
	var req eventRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return rebate.Event{}, apperr.FromJSON("the event", err)
	}
	return toEvent(req)
}
