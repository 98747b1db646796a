package rebate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/page"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// StatementLine is one posting on a member's account.
type StatementLine struct {
	PostingID    int64
	EntryID      int64
	OccurredAt   time.Time
	RecordedAt   time.Time
	Kind         string
	Account      string
	Amount       money.Amount // signed: credits to the member are positive
	BalanceAfter money.Amount
	OrderID      string
}

// Statement lists postings on the member's held, available and withdrawing accounts in posting
// order, after the cursor (page.IntCursor of a posting id; "" for the start), optionally in one currency.
func (e *Engine) Statement(ctx context.Context, memberID, currency, cursor string, limit int) ([]StatementLine, string, error) {
	if _, err := e.GetMember(ctx, memberID); err != nil {
		return nil, "", err
	}
	if currency != "" {
		if _, err := money.ParseCurrency(currency); err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrValidation, err)
		}
	}
	after, err := page.ParseInt("statement", cursor)
	if err != nil {
		return nil, "", err
	}
	limit = page.Limit(limit)
	rows, err := store.New(e.pool).StatementPage(ctx, sqlc.StatementPageParams{
		Codes:    []string{ledger.MemberAccount(memberID, "held"), ledger.MemberAccount(memberID, "available"), ledger.MemberAccount(memberID, "withdrawing")},
		Currency: currency, AfterID: after, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, "", fmt.Errorf("statement: %w", err)
	}
	next := ""
	rows, more := page.Trim(rows, limit)
	if more {
		next = page.IntCursor("statement", rows[len(rows)-1].ID)
	}
	out := make([]StatementLine, 0, len(rows))
	for _, r := range rows {
		c := money.Currency(r.Currency)
		amt, err := money.New(r.SignedAmount, c)
		if err != nil {
			return nil, "", err
		}
		bal, err := money.New(r.BalanceAfter, c)
		if err != nil {
			return nil, "", err
		}
		out = append(out, StatementLine{PostingID: r.ID, EntryID: r.EntryID, OccurredAt: r.OccurredAt, RecordedAt: r.RecordedAt,
			Kind: r.Kind, Account: r.Code, Amount: amt, BalanceAfter: bal, OrderID: r.OrderID})
	}
	return out, next, nil
}

// Referral is one invitee at a level.
type Referral struct {
	MemberID  string
	Level     int
	JoinedAt  time.Time
	Converted bool
	// Earned is what this invitee's orders earned the member (accrued minus clawed back), per currency.
	Earned map[string]string
}

// Referrals lists the member's invitees at one level (1 to 3), after the cursor ("" for the start).
func (e *Engine) Referrals(ctx context.Context, memberID string, level int, cursor string, limit int) ([]Referral, string, error) {
	if level < 1 || level > program.MaxLevels {
		return nil, "", fmt.Errorf("%w: level must be 1, 2 or 3", ErrValidation)
	}
	if _, err := e.GetMember(ctx, memberID); err != nil {
		return nil, "", err
	}
	// The cursor names the level too: a page of one level does not go on in another.
	list := "referrals:" + strconv.Itoa(level)
	after, err := page.ParseString(list, cursor)
	if err != nil {
		return nil, "", err
	}
	limit = page.Limit(limit)
	rows, err := store.New(e.pool).ReferralPage(ctx, sqlc.ReferralPageParams{MemberID: memberID, Level: int32(level), AfterID: after, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, "", fmt.Errorf("referrals: %w", err)
	}
	next := ""
	rows, more := page.Trim(rows, limit)
	if more {
		next = page.StringCursor(list, rows[len(rows)-1].ID)
	}
	out := make([]Referral, 0, len(rows))
	for _, r := range rows {
		earned := map[string]string{}
		if err := json.Unmarshal([]byte(r.Earned), &earned); err != nil {
			return nil, "", err
		}
		for c, v := range earned {
			if a, err := money.New(mustDecimal(v), money.Currency(c)); err == nil {
				earned[c] = a.String()
			}
		}
		out = append(out, Referral{MemberID: r.ID, Level: level, JoinedAt: r.CreatedAt, Converted: r.Converted, Earned: earned})
	}
	return out, next, nil
}
