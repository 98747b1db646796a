package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// AccountBalance is an account's balance in one currency, on the account's normal side (a positive
// balance of a liability is money owed to the member; of an expense, money spent).
type AccountBalance struct {
	Code     string
	Currency money.Currency
	Kind     AccountKind
	Balance  money.Amount
}

// normal turns a debit-minus-credit sum into a balance on the kind's normal side.
func normal(kind AccountKind, debitMinusCredit decimal.Decimal) decimal.Decimal {
	if kind.DebitNormal() {
		return debitMinusCredit
	}
	return debitMinusCredit.Neg()
}

// Balances returns an account's balance in every currency it has. With asOf nil it reads the cached
// balances (summing a hot account's shards); with asOf it sums the postings recorded at or before
// that instant, which is exact for any instant. ErrNotFound if the account has never been used.
func (l *Ledger) Balances(ctx context.Context, code string, asOf *time.Time) ([]AccountBalance, error) {
	return balances(ctx, store.New(l.pool), code, asOf)
}

func balances(ctx context.Context, q *store.Queries, code string, asOf *time.Time) ([]AccountBalance, error) {
	rows, err := q.AccountListByCode(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("read account %s: %w", code, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: account %q", ErrNotFound, code)
	}
	out := make([]AccountBalance, 0, len(rows))
	for _, a := range rows {
		var bal decimal.Decimal
		if asOf == nil {
			bal, err = q.BalanceCurrent(ctx, a.ID)
		} else {
			var dmc decimal.Decimal
			dmc, err = q.BalanceAsOf(ctx, sqlc.BalanceAsOfParams{AccountID: a.ID, AsOf: *asOf})
			bal = normal(AccountKind(a.Kind), dmc)
		}
		if err != nil {
			return nil, fmt.Errorf("balance of %s: %w", code, err)
		}
		amt, err := money.New(bal, money.Currency(a.Currency))
		if err != nil {
			return nil, err
		}
		out = append(out, AccountBalance{Code: a.Code, Currency: money.Currency(a.Currency), Kind: AccountKind(a.Kind), Balance: amt})
	}
	return out, nil
}

// Balance is one account's balance in one currency (zero if never used).
func (l *Ledger) Balance(ctx context.Context, code string, cur money.Currency) (money.Amount, error) {
	return l.BalanceIn(ctx, l.pool, code, cur)
}

// BalanceIn is Balance read in db, typically the caller's transaction, so it includes what that
// transaction has posted so far.
func (l *Ledger) BalanceIn(ctx context.Context, db store.DBTX, code string, cur money.Currency) (money.Amount, error) {
	bs, err := balances(ctx, store.New(db), code, nil)
	if errors.Is(err, ErrNotFound) {
		return money.Zero(cur), nil
	}
	if err != nil {
		return money.Amount{}, err
	}
	for _, b := range bs {
		if b.Currency == cur {
			return b.Balance, nil
		}
	}
	return money.Zero(cur), nil
}

// TrialLine is one account in the trial balance: its net balance shown in the debit or the credit
// column.
type TrialLine struct {
	Code     string
	Currency money.Currency
	Kind     AccountKind
	Debit    money.Amount
	Credit   money.Amount
}

// TrialTotal sums a currency's columns; in a sound journal they are equal.
type TrialTotal struct {
	Currency money.Currency
	Debit    money.Amount
	Credit   money.Amount
}

// TrialBalance lists every account with a non-zero balance and the per-currency totals, from the
// cached balances (asOf nil) or recomputed from postings as of an instant. Both views are exact;
// the first is fast, the second needs no cache.
func (l *Ledger) TrialBalance(ctx context.Context, asOf *time.Time) ([]TrialLine, []TrialTotal, error) {
	type row struct {
		code, cur, kind string
		dmc             decimal.Decimal
	}
	var rows []row
	q := store.New(l.pool)
	if asOf == nil {
		rs, err := q.BalanceTrialCurrent(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("trial balance: %w", err)
		}
		for _, r := range rs {
			rows = append(rows, row{r.Code, r.Currency, r.Kind, normal(AccountKind(r.Kind), r.Balance)})
		}
	} else {
		rs, err := q.BalanceTrialAsOf(ctx, *asOf)
		if err != nil {
			return nil, nil, fmt.Errorf("trial balance: %w", err)
		}
		for _, r := range rs {
			rows = append(rows, row{r.Code, r.Currency, r.Kind, r.DebitMinusCredit})
		}
	}
	var lines []TrialLine
	totals := map[money.Currency]*TrialTotal{}
	var order []money.Currency
	for _, r := range rows {
		if r.dmc.IsZero() {
			continue
		}
		cur := money.Currency(r.cur)
		line := TrialLine{Code: r.code, Currency: cur, Kind: AccountKind(r.kind), Debit: money.Zero(cur), Credit: money.Zero(cur)}
		t, ok := totals[cur]
		if !ok {
			t = &TrialTotal{Currency: cur, Debit: money.Zero(cur), Credit: money.Zero(cur)}
			totals[cur] = t
			order = append(order, cur)
		}
		if r.dmc.IsPositive() {
			line.Debit = money.Round(r.dmc, cur, money.RoundDown)
			t.Debit, _ = t.Debit.Add(line.Debit)
		} else {
			line.Credit = money.Round(r.dmc.Neg(), cur, money.RoundDown)
			t.Credit, _ = t.Credit.Add(line.Credit)
		}
		lines = append(lines, line)
	}
	out := make([]TrialTotal, 0, len(order))
	for _, c := range order {
		out = append(out, *totals[c])
	}
	return lines, out, nil
}

// Entry reads one entry with its postings.
func (l *Ledger) Entry(ctx context.Context, db store.DBTX, id int64) (Entry, error) {
	es, err := loadEntries(ctx, store.New(db), []int64{id})
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, fmt.Errorf("%w: entry %d", ErrNotFound, id)
	}
	return es[0], nil
}

// loadEntries reads entries with their postings, in id order.
func loadEntries(ctx context.Context, q *store.Queries, ids []int64) ([]Entry, error) {
	rows, err := q.EntryGetManyByIDs(ctx, ids)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	out := make([]Entry, len(rows))
	pos := map[int64]int{}
	for i, r := range rows {
		out[i] = Entry{ID: r.ID, Key: r.IdempotencyKey, Kind: r.Kind, OccurredAt: r.OccurredAt, RecordedAt: r.RecordedAt,
			Metadata: r.Metadata, RefersTo: deref(r.RefersTo)}
		pos[r.ID] = i
	}
	ps, err := q.PostingListByEntries(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	for _, p := range ps {
		// A verifier must be able to read a posting that breaks the scale rule (altered behind the
		// database's back), so the exact stored value is kept beside the checked amount.
		amt, _ := money.New(p.Amount, money.Currency(p.Currency))
		i := pos[p.EntryID]
		out[i].Postings = append(out[i].Postings, Posting{ID: p.ID, Account: p.Code, Side: Side(p.Side), Amount: amt,
			currency: money.Currency(p.Currency), exact: p.Amount, accountID: p.AccountID})
	}
	return out, nil
}

// loadEntriesForSealing reads the postings of the seal candidates (which carry their entries' own
// columns) and returns the entries in the candidates' order, with account codes from the ledger's
// cache (accounts never change; codes not seen yet are read once, in one query).
func (l *Ledger) loadEntriesForSealing(ctx context.Context, tx pgx.Tx, cands []sqlc.SealCandidatesRow) ([]Entry, error) {
	ids := make([]int64, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	ps, err := store.New(tx).PostingListForSealing(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	accountIDs := make([]int64, len(ps))
	for i, p := range ps {
		accountIDs[i] = p.AccountID
	}
	codes := l.cache.codes(accountIDs)
	var unknown []int64
	for i, code := range codes {
		if code == "" {
			unknown = append(unknown, accountIDs[i])
		}
	}
	if len(unknown) > 0 {
		known, err := store.New(tx).AccountCodesByIDs(ctx, unknown)
		if err != nil {
			return nil, fmt.Errorf("read account codes: %w", err)
		}
		for _, a := range known {
			l.cache.putCode(a.ID, a.Code)
		}
		codes = l.cache.codes(accountIDs)
	}
	out := make([]Entry, len(cands))
	pos := make(map[int64]int, len(cands))
	for i, c := range cands {
		out[i] = Entry{ID: c.ID, Key: c.IdempotencyKey, Kind: c.Kind, OccurredAt: c.OccurredAt, RecordedAt: c.RecordedAt,
			Metadata: c.Metadata, RefersTo: deref(c.RefersTo)}
		pos[c.ID] = i
	}
	for j, p := range ps {
		code := codes[j]
		if code == "" {
			return nil, fmt.Errorf("posting %d names account %d, which does not exist", p.ID, p.AccountID)
		}
		amt, _ := money.New(p.Amount, money.Currency(p.Currency))
		i := pos[p.EntryID]
		out[i].Postings = append(out[i].Postings, Posting{ID: p.ID, Account: code, Side: Side(p.Side), Amount: amt,
			currency: money.Currency(p.Currency), exact: p.Amount})
	}
	return out, nil
}

// BalancesStep is a step for store.Pipelined or store.SendAhead that reads the cached balances of
// several accounts, codes[i] in curs[i] into into[i] (zero for an account never used), so that a
// caller can read them in the same round trip as its other reads.
func BalancesStep(ctx context.Context, codes []string, curs []money.Currency, into []money.Amount) func(q *store.Queries) error {
	return func(q *store.Queries) error {
		p := sqlc.BalanceByCodesParams{Codes: codes, Currencies: make([]string, len(curs))}
		for i, c := range curs {
			p.Currencies[i] = string(c)
		}
		rows, err := q.BalanceByCodes(ctx, p)
		if err != nil {
			return fmt.Errorf("balances of %d accounts: %w", len(codes), err)
		}
		found := make(map[accountKey]decimal.Decimal, len(rows))
		for _, r := range rows {
			found[accountKey{r.Code, money.Currency(r.Currency)}] = r.Balance
		}
		for i, code := range codes {
			if into[i], err = money.New(found[accountKey{code, curs[i]}], curs[i]); err != nil {
				return fmt.Errorf("balance of %s: %w", code, err)
			}
		}
		return nil
	}
}
