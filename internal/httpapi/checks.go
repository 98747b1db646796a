package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/audit"
)

// getChecks lists the continuous checker's runs, newest first.
func (s *server) getChecks(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	checks, next, err := audit.Checks(c.Request().Context(), s.cfg.Pool, c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageJSON[audit.Check]{Items: checks, NextCursor: next})
}
