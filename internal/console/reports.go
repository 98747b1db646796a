package console

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/program"
)

// The console's read-only pages: the program and its versions, webhooks and their deliveries, the
// leaderboard and the program report. Each reads through the package that owns the data.

func indent(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func (c *Console) program(ec echo.Context) error {
	ps, err := program.List(ec.Request().Context(), c.cfg.Pool)
	if err != nil {
		return err
	}
	type version struct {
		Version     int64
		EffectiveAt time.Time
		Rules       string
	}
	var vs []version
	for _, p := range ps {
		vs = append(vs, version{p.Version, p.EffectiveAt, indent(p.JSON)})
	}
	return c.render(ec, http.StatusOK, "program.html", map[string]any{"Versions": vs})
}

func (c *Console) webhooks(ec echo.Context) error {
	eps, next, err := c.cfg.Webhooks.List(ec.Request().Context(), ec.QueryParam("cursor"), 0)
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "webhooks.html", map[string]any{"Endpoints": eps, "Next": next})
}

func (c *Console) deliveries(ec echo.Context) error {
	ep, err := c.cfg.Webhooks.Get(ec.Request().Context(), ec.Param("id"))
	if err != nil {
		return c.failed(ec, err)
	}
	status := ec.QueryParam("status")
	ds, next, err := c.cfg.Webhooks.Deliveries(ec.Request().Context(), ep.ID, status, ec.QueryParam("cursor"), 0)
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "deliveries.html", map[string]any{"Endpoint": ep, "Deliveries": ds, "Status": status, "Next": next})
}

// period reads ?from=&to= (RFC 3339), by default the last 30 days; a value that is not a time is
// refused, not ignored.
func (c *Console) period(ec echo.Context) (time.Time, time.Time, error) {
	to := c.cfg.Clock.Now()
	from := to.Add(-30 * 24 * time.Hour)
	for name, t := range map[string]*time.Time{"from": &from, "to": &to} {
		raw := ec.QueryParam(name)
		if raw == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return from, to, apperr.New(apperr.Validation, "%s must be an RFC 3339 time such as 2026-11-01T00:00:00Z", name)
		}
		*t = v
	}
	return from, to, nil
}

func (c *Console) leaderboard(ec echo.Context) error {
	from, to, err := c.period(ec)
	if err != nil {
		return c.failed(ec, err)
	}
	metric := ec.QueryParam("metric")
	if metric == "" {
		metric = campaign.Invited
	}
	b, err := c.cfg.Campaigns.Leaderboard(ec.Request().Context(), campaign.Query{Metric: metric, From: from, To: to, Limit: 50})
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "leaderboard.html", map[string]any{"Board": b, "Metrics": campaign.Metrics})
}

func (c *Console) report(ec echo.Context) error {
	from, to, err := c.period(ec)
	if err != nil {
		return c.failed(ec, err)
	}
	if !to.After(from) {
		return c.failed(ec, apperr.New(apperr.Validation, "to must be after from"))
	}
	rep, err := c.cfg.Engine.ProgramAnalytics(ec.Request().Context(), from, to)
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "report.html", map[string]any{"Report": rep, "Details": indent(rep)})
}
