package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/program"
)

type programJSON struct {
	Version     int64     `json:"version"`
	EffectiveAt time.Time `json:"effective_at"`
	program.RulesJSON
}

func toProgramJSON(p program.Program) programJSON {
	j := p.JSON
	// Lists are lists, also when empty (never null).
	if j.Tiers == nil {
		j.Tiers = []program.TierJSON{}
	}
	if j.Milestones == nil {
		j.Milestones = []program.MilestoneJSON{}
	}
	return programJSON{Version: p.Version, EffectiveAt: p.EffectiveAt, RulesJSON: j}
}

func (s *server) getProgram(c echo.Context) error {
	p, err := program.At(c.Request().Context(), s.cfg.Pool, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toProgramJSON(p))
}

// putProgram stores a new version, effective from ?effective_at= (RFC 3339) or now.
func (s *server) putProgram(c echo.Context) error {
	now := s.cfg.Clock.Now()
	at := now
	if raw := c.QueryParam("effective_at"); raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return validation("effective_at must be an RFC 3339 time")
		}
		at = t
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	p, err := program.Put(c.Request().Context(), s.cfg.Pool, body, at, now.Add(-program.MaxSkew))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toProgramJSON(p))
}

func (s *server) getProgramVersions(c echo.Context) error {
	ps, err := program.List(c.Request().Context(), s.cfg.Pool)
	if err != nil {
		return err
	}
	// Versions are few; one page always holds them all.
	out := pageJSON[programJSON]{Items: make([]programJSON, 0, len(ps))}
	for _, p := range ps {
		out.Items = append(out.Items, toProgramJSON(p))
	}
	return c.JSON(http.StatusOK, out)
}
