package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

type memberRequest struct {
	ID           string `json:"id"`
	ReferrerID   string `json:"referrer_id"`
	ReferralCode string `json:"referral_code"`
}

type memberJSON struct {
	ID           string       `json:"id"`
	ReferralCode string       `json:"referral_code"`
	ReferrerID   *string      `json:"referrer_id"`
	Upline       []string     `json:"upline"`
	CreatedAt    time.Time    `json:"created_at"`
	Stats        *memberStats `json:"stats,omitempty"`
}

type memberStats struct {
	Invited   int64        `json:"invited"`
	Converted int          `json:"converted"`
	Earned    []earnedJSON `json:"earned"`
}

type earnedJSON struct {
	Currency money.Currency `json:"currency"`
	Amount   money.Amount   `json:"amount"`
}

func toMemberJSON(m rebate.Member) memberJSON {
	out := memberJSON{ID: m.ID, ReferralCode: m.ReferralCode, Upline: m.Upline, CreatedAt: m.CreatedAt}
	if out.Upline == nil {
		out.Upline = []string{}
	}
	if m.ReferrerID != "" {
		out.ReferrerID = &m.ReferrerID
	}
	return out
}

func (s *server) postMember(c echo.Context) error {
	var req memberRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	m, replayed, err := s.cfg.Engine.Register(c.Request().Context(), rebate.Registration{ID: req.ID, ReferrerID: req.ReferrerID, ReferralCode: req.ReferralCode})
	if err != nil {
		return err
	}
	return created(c, http.StatusCreated, replayed, toMemberJSON(m))
}

func (s *server) getMember(c echo.Context) error {
	ctx := c.Request().Context()
	m, err := s.cfg.Engine.GetMember(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	invited, err := s.cfg.Engine.InvitedCount(ctx, m.ID)
	if err != nil {
		return err
	}
	bs, err := s.cfg.Engine.MemberBalances(ctx, m.ID)
	if err != nil {
		return err
	}
	out := toMemberJSON(m)
	out.Stats = &memberStats{Invited: invited, Converted: m.ConvertedInvitees, Earned: []earnedJSON{}}
	for _, b := range bs {
		out.Stats.Earned = append(out.Stats.Earned, earnedJSON{Currency: b.Currency, Amount: b.Earned})
	}
	return c.JSON(http.StatusOK, out)
}

type balancesJSON struct {
	MemberID string             `json:"member_id"`
	Balances []memberBalanceRow `json:"balances"`
}

type memberBalanceRow struct {
	Currency    money.Currency `json:"currency"`
	Held        money.Amount   `json:"held"`
	Available   money.Amount   `json:"available"`
	Withdrawing money.Amount   `json:"withdrawing"`
	Earned      money.Amount   `json:"earned"`
	PaidOut     money.Amount   `json:"paid_out"`
}

func (s *server) getMemberBalances(c echo.Context) error {
	id := c.Param("id")
	bs, err := s.cfg.Engine.MemberBalances(c.Request().Context(), id)
	if err != nil {
		return err
	}
	// paid_out is the wallet's: the sum of paid withdrawals (a currency a member was paid in always
	// has journal balances, so it already has a row).
	paid := map[money.Currency]money.Amount{}
	if s.cfg.Wallet != nil {
		if paid, err = s.cfg.Wallet.PaidOut(c.Request().Context(), id); err != nil {
			return err
		}
	}
	out := balancesJSON{MemberID: id, Balances: []memberBalanceRow{}}
	for _, b := range bs {
		if p, ok := paid[b.Currency]; ok {
			b.PaidOut = p
		}
		out.Balances = append(out.Balances, memberBalanceRow{Currency: b.Currency, Held: b.Held, Available: b.Available,
			Withdrawing: b.Withdrawing, Earned: b.Earned, PaidOut: b.PaidOut})
	}
	return c.JSON(http.StatusOK, out)
}

type tokenRequest struct {
	TTLSeconds int `json:"ttl_seconds"`
}

type tokenJSON struct {
	Token     string    `json:"token"`
	MemberID  string    `json:"member_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// postMemberToken issues a member token (default one hour, at most one hour).
func (s *server) postMemberToken(c echo.Context) error {
	var req tokenRequest
	if c.Request().ContentLength != 0 {
		if err := decodeStrict(c, &req); err != nil {
			return err
		}
	}
	ttl := auth.MemberTokenTTL
	if req.TTLSeconds != 0 {
		if req.TTLSeconds < 60 || time.Duration(req.TTLSeconds)*time.Second > auth.MemberTokenTTL {
			return validation("ttl_seconds must be from 60 to 3600")
		}
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	ctx := c.Request().Context()
	m, err := s.cfg.Engine.GetMember(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	p, _ := c.Get("principal").(auth.Principal)
	token, expires, err := auth.CreateMemberToken(ctx, s.cfg.Pool, p, m.ID, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenJSON{Token: token, MemberID: m.ID, ExpiresAt: expires})
}
