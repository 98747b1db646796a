package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/money"
)

type lotJSON struct {
	MemberID       string       `json:"member_id"`
	Leg            string       `json:"leg"`
	Accrued        money.Amount `json:"accrued"`
	ClawedBack     money.Amount `json:"clawed_back"`
	Released       money.Amount `json:"released"`
	ProgramVersion int64        `json:"program_version"`
	Upline         []string     `json:"upline"`
}

type orderJSON struct {
	OrderID        string       `json:"order_id"`
	MemberID       string       `json:"member_id"`
	Amount         money.Amount `json:"amount"`
	Currency       string       `json:"currency"`
	Refunded       money.Amount `json:"refunded"`
	Status         string       `json:"status"`
	OccurredAt     time.Time    `json:"occurred_at"`
	ReleaseAt      time.Time    `json:"release_at"`
	ReleasedAt     *time.Time   `json:"released_at"`
	ProgramVersion int64        `json:"program_version"`
	Upline         []string     `json:"upline"`
	Lots           []lotJSON    `json:"lots"`
	Anomalies      []string     `json:"anomalies"`
}

func (s *server) getOrder(c echo.Context) error {
	o, err := s.cfg.Engine.Order(c.Request().Context(), c.Param("order_id"))
	if err != nil {
		return err
	}
	out := orderJSON{OrderID: o.OrderID, MemberID: o.MemberID, Amount: o.Amount, Currency: string(o.Amount.Currency()),
		Refunded: o.Refunded, Status: o.Status, OccurredAt: o.OccurredAt, ReleaseAt: o.ReleaseAt, ReleasedAt: o.ReleasedAt,
		ProgramVersion: o.ProgramVersion, Upline: o.Upline, Lots: []lotJSON{}, Anomalies: o.Anomalies}
	if out.Anomalies == nil {
		out.Anomalies = []string{}
	}
	for _, l := range o.Lots {
		out.Lots = append(out.Lots, lotJSON{MemberID: l.MemberID, Leg: l.Leg, Accrued: l.Accrued, ClawedBack: l.ClawedBack,
			Released: l.Released, ProgramVersion: l.ProgramVersion, Upline: l.Upline})
	}
	return c.JSON(http.StatusOK, out)
}
