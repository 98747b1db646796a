package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// getProgramReport is the program's analytics over [from, to) (default: all time until now).
func (s *server) getProgramReport(c echo.Context) error {
	from, to := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), s.cfg.Clock.Now()
	if err := queryTimes(c, map[string]*time.Time{"from": &from, "to": &to}); err != nil {
		return err
	}
	if !to.After(from) {
		return validation("to must be after from")
	}
	rep, err := s.cfg.Engine.ProgramAnalytics(c.Request().Context(), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
