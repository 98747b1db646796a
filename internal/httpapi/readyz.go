package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/store"
)

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz is ready when the database answers, every migration is applied, and the extra check
// (River running, in processes that run workers) passes.
func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Checks: map[string]string{}}
	fail := func(name, why string) { r.Status = "not_ready"; r.Checks[name] = why }
	if err := s.cfg.Pool.Ping(ctx); err != nil {
		// Anyone may call this: the error (host, user, database) goes to the log only.
		s.cfg.Logger.Warn("readyz: database unreachable", "err", err)
		fail("database", "database unreachable")
	} else {
		r.Checks["database"] = "ok"
		pending, err := store.Pending(ctx, s.cfg.Pool)
		switch {
		case err != nil:
			s.cfg.Logger.Warn("readyz: migrations unreadable", "err", err)
			fail("migrations", "cannot read the applied migrations")
		case len(pending) > 0:
			fail("migrations", "pending: "+strings.Join(pending, ", "))
		default:
			r.Checks["migrations"] = "ok"
		}
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			fail("workers", err.Error())
		} else {
			r.Checks["workers"] = "ok"
		}
	}
	status := http.StatusOK
	if r.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, r)
}
