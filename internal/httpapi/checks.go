package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/audit"
)

// getChecks lists the continuous checker's runs, newest first; the cursor is the last run's id.
func (s *server) getChecks(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	var before int64
	if raw := c.QueryParam("cursor"); raw != "" {
		if before, err = strconv.ParseInt(raw, 10, 64); err != nil || before < 1 {
			return validation("cursor is not one this service gave")
		}
	}
	checks, err := audit.Checks(c.Request().Context(), s.cfg.Pool, before, limit)
	if err != nil {
		return err
	}
	out := page[audit.Check]{Items: checks}
	if len(checks) == limit {
		out.NextCursor = strconv.FormatInt(checks[len(checks)-1].ID, 10)
	}
	return c.JSON(http.StatusOK, out)
}
