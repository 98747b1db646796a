package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/audit"
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
	ChainSeq int64         `json:"chain_seq"`
	Balances []balanceJSON `json:"balances"`
}

// chainSeq is the chain seq a balance read corresponds to: as of an instant, the last sealed entry
// recorded by then; now, the chain's head (entries not sealed yet are in the balance too).
func (s *server) chainSeq(c echo.Context, asOf *time.Time) (int64, error) {
	if asOf != nil {
		return ledger.SeqAsOf(c.Request().Context(), s.cfg.Pool, *asOf)
	}
	seq, _, err := ledger.ChainHead(c.Request().Context(), s.cfg.Pool)
	return seq, err
}

// queryTimes reads the named query parameters as RFC 3339 times into their targets; an absent one
// leaves its target as it is.
func queryTimes(c echo.Context, into map[string]*time.Time) error {
	for name, t := range into {
		raw := c.QueryParam(name)
		if raw == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return validation(name + " must be an RFC 3339 time such as 2026-11-01T00:00:00Z")
		}
		*t = v
	}
	return nil
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
	seq, err := s.chainSeq(c, asOf)
	if err != nil {
		return err
	}
	out := accountJSON{Code: code, AsOf: asOf, ChainSeq: seq, Balances: make([]balanceJSON, 0, len(bs))}
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
	ChainSeq int64            `json:"chain_seq"`
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
	seq, err := s.chainSeq(c, asOf)
	if err != nil {
		return err
	}
	out := trialBalanceJSON{AsOf: asOf, ChainSeq: seq, Accounts: make([]trialLineJSON, 0, len(lines)), Totals: make([]trialTotalJSON, 0, len(totals))}
	for _, l := range lines {
		out.Accounts = append(out.Accounts, trialLineJSON{Account: l.Code, Currency: l.Currency, Kind: l.Kind, Debit: l.Debit, Credit: l.Credit})
	}
	for _, t := range totals {
		out.Totals = append(out.Totals, trialTotalJSON{Currency: t.Currency, Debit: t.Debit, Credit: t.Credit, Balanced: t.Debit.Equal(t.Credit)})
	}
	return c.JSON(http.StatusOK, out)
}

// getIncomeStatement is the program's cost per currency over [from, to) (recorded_at), from the
// platform accounts' postings.
func (s *server) getIncomeStatement(c echo.Context) error {
	from, to := time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := queryTimes(c, map[string]*time.Time{"from": &from, "to": &to}); err != nil {
		return err
	}
	cur := c.QueryParam("currency")
	if cur != "" && !money.Currency(cur).Valid() {
		return validation("currency must be CNY, USD, EUR, JPY or PTS")
	}
	lines, err := audit.IncomeStatement(c.Request().Context(), s.cfg.Pool, from, to, cur)
	if err != nil {
		return err
	}
	if lines == nil {
		lines = []audit.IncomeLine{}
	}
	return c.JSON(http.StatusOK, map[string]any{"from": from, "to": to, "currencies": lines})
}
