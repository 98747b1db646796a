package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/notify"
)

type webhookRequest struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// postWebhook registers an endpoint; the answer carries its secret, which no read shows again.
func (s *server) postWebhook(c echo.Context) error {
	var req webhookRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	ep, replayed, err := s.cfg.Webhooks.Register(c.Request().Context(), notify.Registration{ID: req.ID, URL: req.URL,
		Events: req.Events, Secret: req.Secret})
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, ep)
}

func (s *server) getWebhooks(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	eps, next, err := s.cfg.Webhooks.List(c.Request().Context(), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageJSON[notify.Endpoint]{Items: eps, NextCursor: next})
}

func (s *server) getWebhook(c echo.Context) error {
	ep, err := s.cfg.Webhooks.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ep)
}

// deleteWebhook stops an endpoint (its pending deliveries are cancelled); 204, also when it was
// deleted before.
func (s *server) deleteWebhook(c echo.Context) error {
	if err := s.cfg.Webhooks.Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type deliveryJSON struct {
	notify.Delivery
	// Event is the body as sent (or to be sent): the receiver's view of the delivery.
	Event json.RawMessage `json:"event"`
}

func (s *server) getWebhookDeliveries(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	ds, next, err := s.cfg.Webhooks.Deliveries(c.Request().Context(), c.Param("id"), c.QueryParam("status"), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	out := pageJSON[deliveryJSON]{Items: make([]deliveryJSON, 0, len(ds)), NextCursor: next}
	for _, d := range ds {
		out.Items = append(out.Items, deliveryJSON{Delivery: d, Event: d.Body})
	}
	return c.JSON(http.StatusOK, out)
}
