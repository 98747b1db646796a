package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/money"
)

// pageJSON is a list's answer: a page of items and the cursor of the next page ("" on the last;
// internal/page makes and reads cursors).
type pageJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func limitParam(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 500 {
		return 0, validation("limit must be a whole number from 1 to 500")
	}
	return n, nil
}

type statementLineJSON struct {
	PostingID    int64        `json:"posting_id"`
	EntryID      int64        `json:"entry_id"`
	OccurredAt   time.Time    `json:"occurred_at"`
	RecordedAt   time.Time    `json:"recorded_at"`
	Kind         string       `json:"kind"`
	Account      string       `json:"account"`
	Currency     string       `json:"currency"`
	Amount       money.Amount `json:"amount"`
	BalanceAfter money.Amount `json:"balance_after"`
	OrderID      string       `json:"order_id,omitempty"`
}

func (s *server) getStatement(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	lines, next, err := s.cfg.Engine.Statement(c.Request().Context(), c.Param("id"), c.QueryParam("currency"), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	out := pageJSON[statementLineJSON]{Items: make([]statementLineJSON, 0, len(lines)), NextCursor: next}
	for _, l := range lines {
		out.Items = append(out.Items, statementLineJSON{PostingID: l.PostingID, EntryID: l.EntryID, OccurredAt: l.OccurredAt,
			RecordedAt: l.RecordedAt, Kind: l.Kind, Account: l.Account, Currency: string(l.Amount.Currency()), Amount: l.Amount,
			BalanceAfter: l.BalanceAfter, OrderID: l.OrderID})
	}
	return c.JSON(http.StatusOK, out)
}

type referralJSON struct {
	MemberID  string            `json:"member_id"`
	Level     int               `json:"level"`
	JoinedAt  time.Time         `json:"joined_at"`
	Converted bool              `json:"converted"`
	Earned    map[string]string `json:"earned"`
}

func (s *server) getReferrals(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	level := 1
	if raw := c.QueryParam("level"); raw != "" {
		if level, err = strconv.Atoi(raw); err != nil {
			return validation("level must be 1, 2 or 3")
		}
	}
	refs, next, err := s.cfg.Engine.Referrals(c.Request().Context(), c.Param("id"), level, c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	out := pageJSON[referralJSON]{Items: make([]referralJSON, 0, len(refs)), NextCursor: next}
	for _, r := range refs {
		out.Items = append(out.Items, referralJSON{MemberID: r.MemberID, Level: r.Level, JoinedAt: r.JoinedAt, Converted: r.Converted, Earned: r.Earned})
	}
	return c.JSON(http.StatusOK, out)
}
