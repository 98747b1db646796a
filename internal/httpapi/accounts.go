package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
)

type balanceJSON struct {
	Currency money.Currency     `json:"currency"`
	Kind     ledger.AccountKind `json:"kind"`
	Balance  money.Amount       `json:"balance"`
}

type accountJSON struct {
	Code     string        `json:"code"`
	AsOf     *time.Time    `json:"as_of,omitempty"`
	Balances []balanceJSON `json:"balances"`
}

// parseAsOf reads ?as_of= (RFC 3339); absent means now, from the cached balances.
func parseAsOf(c echo.Context) (*time.Time, error) {
	raw := c.QueryParam("as_of")
	if raw == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return nil, validation("as_of must be an RFC 3339 time such as 2026-11-01T00:00:00Z")
	}
	return &t, nil
}

func (s *server) getAccount(c echo.Context) error {
	code := c.Param("code")
	if _, err := ledger.Classify(code); err != nil {
		return err
	}
	asOf, err := parseAsOf(c)
	if err != nil {
		return err
	}
	bs, err := s.cfg.Ledger.Balances(c.Request().Context(), code, asOf)
	if err != nil {
		return err
	}
	out := accountJSON{Code: code, AsOf: asOf, Balances: make([]balanceJSON, 0, len(bs))}
	for _, b := range bs {
		out.Balances = append(out.Balances, balanceJSON{Currency: b.Currency, Kind: b.Kind, Balance: b.Balance})
	}
	return c.JSON(http.StatusOK, out)
}

type trialLineJSON struct {
	Account  string             `json:"account"`
	Currency money.Currency     `json:"currency"`
	Kind     ledger.AccountKind `json:"kind"`
	Debit    money.Amount       `json:"debit"`
	Credit   money.Amount       `json:"credit"`
}

type trialTotalJSON struct {
	Currency money.Currency `json:"currency"`
	Debit    money.Amount   `json:"debit"`
	Credit   money.Amount   `json:"credit"`
	Balanced bool           `json:"balanced"`
}

type trialBalanceJSON struct {
	AsOf     *time.Time       `json:"as_of,omitempty"`
	Accounts []trialLineJSON  `json:"accounts"`
	Totals   []trialTotalJSON `json:"totals"`
}

func (s *server) getTrialBalance(c echo.Context) error {
	asOf, err := parseAsOf(c)
	if err != nil {
		return err
	}
	lines, totals, err := s.cfg.Ledger.TrialBalance(c.Request().Context(), asOf)
	if err != nil {
		return err
	}
	out := trialBalanceJSON{AsOf: asOf, Accounts: make([]trialLineJSON, 0, len(lines)), Totals: make([]trialTotalJSON, 0, len(totals))}
	for _, l := range lines {
		out.Accounts = append(out.Accounts, trialLineJSON{Account: l.Code, Currency: l.Currency, Kind: l.Kind, Debit: l.Debit, Credit: l.Credit})
	}
	for _, t := range totals {
		out.Totals = append(out.Totals, trialTotalJSON{Currency: t.Currency, Debit: t.Debit, Credit: t.Credit, Balanced: t.Debit.Equal(t.Credit)})
	}
	return c.JSON(http.StatusOK, out)
}
