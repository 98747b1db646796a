package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// VerifyReport is what Verify found. A sound journal has no Problems.
type VerifyReport struct {
	AccountsChecked int      `json:"accounts_checked"`
	SealsChecked    int      `json:"seals_checked"`
	Problems        []string `json:"problems"`
}

// OK reports whether nothing was found.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

const maxProblems = 1000

func (r *VerifyReport) add(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Verify recomputes everything that can be recomputed and reports every difference: each cached
// balance against the sum of its postings, no forbidden negative balance, every sealed entry's
// balance per currency and its hash against the chain, and the chain's links.
func (l *Ledger) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	q := store.New(l.pool)
	accts, err := q.BalanceVerifyAll(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify balances: %w", err)
	}
	for _, a := range accts {
		rep.AccountsChecked++
		want := normal(AccountKind(a.Kind), a.DebitMinusCredit)
		if !a.Cached.Equal(want) {
			rep.add("account %s %s: cached balance %s, postings sum to %s", a.Code, a.Currency, a.Cached, want)
		}
		if !a.AllowNegative && want.IsNegative() {
			rep.add("account %s %s: balance %s below zero", a.Code, a.Currency, want)
		}
	}
	if err := l.verifyChain(ctx, q, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

func (l *Ledger) verifyChain(ctx context.Context, q *store.Queries, rep *VerifyReport) error {
	prev := GenesisHash
	var seq int64
	for {
		seals, err := q.SealList(ctx, sqlc.SealListParams{AfterSeq: seq, MaxSeals: SealBatch})
		if err != nil {
			return fmt.Errorf("verify chain: %w", err)
		}
		if len(seals) == 0 {
			return nil
		}
		ids := make([]int64, len(seals))
		for i, s := range seals {
			ids[i] = s.EntryID
		}
		entries, err := loadEntries(ctx, q, ids)
		if err != nil {
			return err
		}
		byID := map[int64]Entry{}
		for _, e := range entries {
			byID[e.ID] = e
		}
		for _, s := range seals {
			rep.SealsChecked++
			if s.Seq != seq+1 {
				rep.add("seal %d follows seal %d: the chain has a gap", s.Seq, seq)
			}
			if !bytes.Equal(s.PrevHash, prev) {
				rep.add("seal %d: prev_hash %s does not match the previous seal's hash %s", s.Seq, hex.EncodeToString(s.PrevHash), hex.EncodeToString(prev))
			}
			e, ok := byID[s.EntryID]
			if !ok {
				rep.add("seal %d: entry %d is missing", s.Seq, s.EntryID)
			} else {
				checkEntryBalances(e, rep)
				canon, err := CanonicalJSON(e)
				if err != nil {
					rep.add("seal %d: entry %d cannot be encoded: %v", s.Seq, e.ID, err)
				} else if got := ChainHash(s.PrevHash, canon); !bytes.Equal(got, s.Hash) {
					rep.add("seal %d: entry %d was altered after sealing (hash %s, sealed %s)", s.Seq, e.ID, hex.EncodeToString(got), hex.EncodeToString(s.Hash))
				}
			}
			prev, seq = s.Hash, s.Seq
		}
	}
}

func checkEntryBalances(e Entry, rep *VerifyReport) {
	sums := map[string]decimal.Decimal{}
	for _, p := range e.Postings {
		d := p.exact
		if p.Side == Credit {
			d = d.Neg()
		}
		sums[string(p.currency)] = sums[string(p.currency)].Add(d)
		if !p.exact.IsPositive() || !p.exact.Equal(p.exact.Truncate(p.currency.Scale())) {
			rep.add("entry %d posting %d: amount %s is not a positive %s amount", e.ID, p.ID, p.exact, p.currency)
		}
	}
	for c, s := range sums {
		if !s.IsZero() {
			rep.add("entry %d does not balance in %s (off by %s)", e.ID, c, s)
		}
	}
	if len(e.Postings) < 2 {
		rep.add("entry %d has %d postings", e.ID, len(e.Postings))
	}
}

// RangeReport is what VerifyRange checked: the stretch of the chain, the accounts its entries
// touched (by code and currency), and the problems found.
type RangeReport struct {
	FromSeq, ToSeq int64
	Entries        int64
	Accounts       []AccountBalance
	Problems       []string
}

// VerifyRange checks the sealed entries with fromSeq <= seq <= toSeq as Verify checks the whole
// chain (links from the seal before fromSeq, each hash, each entry's balance per currency), then the
// cached balance of every account those entries touched against the sum of all its postings. It
// reads in db (one snapshot when db is a REPEATABLE READ transaction). The touched accounts'
// balances are returned for checks of the caller's own (held against lots, say).
func VerifyRange(ctx context.Context, db store.DBTX, fromSeq, toSeq int64) (RangeReport, error) {
	rep := RangeReport{FromSeq: fromSeq, ToSeq: toSeq}
	vr := &VerifyReport{}
	q := store.New(db)
	prev := GenesisHash
	if fromSeq > 1 {
		s, err := q.SealGet(ctx, fromSeq-1)
		if err != nil {
			return rep, fmt.Errorf("read seal %d: %w", fromSeq-1, err)
		}
		prev = s.Hash
	}
	expect := fromSeq
	touched := map[int64]bool{}
	var ids []int64
	err := StreamSealed(ctx, db, fromSeq, toSeq, func(se SealedEntry) error {
		rep.Entries++
		if se.Seq != expect {
			vr.add("seal %d follows seal %d: the chain has a gap", se.Seq, expect-1)
		}
		if !bytes.Equal(se.PrevHash, prev) {
			vr.add("seal %d: prev_hash %x does not match the previous seal's hash %x", se.Seq, se.PrevHash, prev)
		}
		checkEntryBalances(se.Entry, vr)
		if canon, err := CanonicalJSON(se.Entry); err != nil {
			vr.add("seal %d: entry %d cannot be encoded: %v", se.Seq, se.Entry.ID, err)
		} else if got := ChainHash(se.PrevHash, canon); !bytes.Equal(got, se.Hash) {
			vr.add("seal %d: entry %d was altered after sealing (hash %x, sealed %x)", se.Seq, se.Entry.ID, got, se.Hash)
		}
		for _, p := range se.Entry.Postings {
			if id := p.accountID; id != 0 && !touched[id] {
				touched[id] = true
				ids = append(ids, id)
			}
		}
		prev, expect = se.Hash, se.Seq+1
		return nil
	})
	if err != nil {
		return rep, err
	}
	if len(ids) > 0 {
		accts, err := q.BalanceVerifyAccounts(ctx, ids)
		if err != nil {
			return rep, fmt.Errorf("verify balances: %w", err)
		}
		for _, a := range accts {
			want := normal(AccountKind(a.Kind), a.DebitMinusCredit)
			if !a.Cached.Equal(want) {
				vr.add("account %s %s: cached balance %s, postings sum to %s", a.Code, a.Currency, a.Cached, want)
			}
			amt, _ := money.New(want, money.Currency(a.Currency))
			rep.Accounts = append(rep.Accounts, AccountBalance{Code: a.Code, Currency: money.Currency(a.Currency), Kind: AccountKind(a.Kind), Balance: amt})
		}
	}
	rep.Problems = vr.Problems
	return rep, nil
}
