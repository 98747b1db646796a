package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

type withdrawalRequest struct {
	ID          string             `json:"id"`
	Amount      string             `json:"amount"`
	Currency    string             `json:"currency"`
	Destination wallet.Destination `json:"destination"`
}

// withdrawalJSON is a withdrawal as answered. Destination is whole for operators and masked
// (type and the account's last four characters) for everyone else.
type withdrawalJSON struct {
	ID             string     `json:"id"`
	MemberID       string     `json:"member_id"`
	Amount         string     `json:"amount"`
	Fee            string     `json:"fee"`
	Net            string     `json:"net"`
	Currency       string     `json:"currency"`
	Status         string     `json:"status"`
	Destination    any        `json:"destination"`
	RequestedAt    time.Time  `json:"requested_at"`
	BatchID        *string    `json:"batch_id"`
	Reason         string     `json:"reason,omitempty"`
	ReviewedAt     *time.Time `json:"reviewed_at,omitempty"`
	SettledAt      *time.Time `json:"settled_at,omitempty"`
	ProgramVersion int64      `json:"program_version"`
}

func principal(c echo.Context) auth.Principal {
	p, _ := c.Get("principal").(auth.Principal)
	return p
}

func toWithdrawalJSON(c echo.Context, w wallet.Withdrawal) withdrawalJSON {
	out := withdrawalJSON{ID: w.ID, MemberID: w.MemberID, Amount: w.Amount.String(), Fee: w.Fee.String(), Net: w.Net.String(),
		Currency: string(w.Amount.Currency()), Status: w.Status, Destination: w.Destination.Masked(), RequestedAt: w.RequestedAt,
		Reason: w.Reason, ReviewedAt: w.ReviewedAt, SettledAt: w.SettledAt, ProgramVersion: w.ProgramVersion}
	if principal(c).Role == auth.Operator {
		out.Destination = w.Destination
	}
	if w.BatchID != "" {
		out.BatchID = &w.BatchID
	}
	return out
}

func (s *server) postWithdrawal(c echo.Context) error {
	var req withdrawalRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	w, replayed, err := s.cfg.Wallet.Request(c.Request().Context(), wallet.WithdrawalRequest{ID: req.ID, MemberID: c.Param("id"),
		Amount: req.Amount, Currency: req.Currency, Destination: req.Destination})
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, toWithdrawalJSON(c, w))
}

// ownWithdrawal reads a withdrawal the caller may see: a member token sees only its own member's
// (another's is not found, so ids cannot be probed).
func (s *server) ownWithdrawal(c echo.Context) (wallet.Withdrawal, error) {
	w, err := s.cfg.Wallet.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return w, err
	}
	if p := principal(c); p.Role == auth.Member && p.MemberID != w.MemberID {
		return wallet.Withdrawal{}, apperr.New(apperr.NotFound, "no withdrawal %q", c.Param("id"))
	}
	return w, nil
}

func (s *server) getWithdrawal(c echo.Context) error {
	w, err := s.ownWithdrawal(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toWithdrawalJSON(c, w))
}

func (s *server) listWithdrawals(c echo.Context, memberID string) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	ws, next, err := s.cfg.Wallet.List(c.Request().Context(), wallet.ListFilter{MemberID: memberID, Status: c.QueryParam("status"),
		Cursor: c.QueryParam("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	out := pageJSON[withdrawalJSON]{Items: make([]withdrawalJSON, 0, len(ws)), NextCursor: next}
	for _, w := range ws {
		out.Items = append(out.Items, toWithdrawalJSON(c, w))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) getMemberWithdrawals(c echo.Context) error {
	if _, err := s.cfg.Engine.GetMember(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return s.listWithdrawals(c, c.Param("id"))
}

func (s *server) getWithdrawals(c echo.Context) error { return s.listWithdrawals(c, "") }

type actionRequest struct {
	Reason string `json:"reason"`
}

// act answers approve, reject and cancel: 200 with the withdrawal; a repeat replays.
func (s *server) act(action wallet.Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req actionRequest
		if err := decodeOptional(c, &req); err != nil {
			return err
		}
		member := ""
		if p := principal(c); p.Role == auth.Member {
			member = p.MemberID
		}
		w, replayed, err := s.cfg.Wallet.Act(c.Request().Context(), c.Param("id"), action, req.Reason, member)
		if err != nil {
			return err
		}
		return created(c, http.StatusOK, replayed, toWithdrawalJSON(c, w))
	}
}
