// Package audit takes the journal out of the service in forms an auditor already trusts and checks
// them: streaming exports of the sealed chain as JSON Lines, CSV and hledger journals, each
// verifiable without our database, and the offline verification of a JSONL export against its
// manifest.
package audit

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
)

// Format is an export format.
type Format string

// The formats.
const (
	JSONL   Format = "jsonl"
	CSV     Format = "csv"
	HLedger Format = "hledger"
)

// ParseFormat accepts jsonl, csv or hledger.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case JSONL, CSV, HLedger:
		return Format(s), nil
	case "":
		return JSONL, nil
	}
	return "", apperr.New(apperr.Validation, "format must be jsonl, csv or hledger")
}

// Range selects a contiguous stretch of the sealed chain: by seq (FromSeq, ToSeq; 0 for open
// ends) or by recorded_at (From, To; zero for open ends). Both may be given: the stretch is then
// their intersection.
type Range struct {
	FromSeq, ToSeq int64
	From, To       time.Time
}

// Sums are a currency's debit and credit totals.
type Sums struct {
	Debit  string `json:"debit"`
	Credit string `json:"credit"`
}

// Summary is what an export covered: the trailer of a JSONL export and the body of a manifest.
type Summary struct {
	Format        Format          `json:"format"`
	FromSeq       int64           `json:"first_seq"`
	ToSeq         int64           `json:"last_seq"`
	Entries       int64           `json:"entries"`
	Postings      int64           `json:"postings"`
	Sums          map[string]Sums `json:"sums"`
	StartPrevHash string          `json:"start_prev_hash"`
	LastHash      string          `json:"last_hash"`
	// ChainHeadSeq is how far the chain reached when the export's snapshot was taken; entries
	// committed but not sealed yet are not exported.
	ChainHeadSeq int64 `json:"chain_head_seq"`
	Unsealed     int64 `json:"unsealed"`
}

// Exporter writes one format; Begin and End may write nothing.
type writer interface {
	Begin(s *Summary) error
	Entry(e ledger.SealedEntry) error
	End(s *Summary) error
}

// Export streams the sealed entries of rng to w in format f, from a single REPEATABLE READ, read
// only snapshot (it writes nothing, so it runs on a read replica too), and returns what it covered.
// progress, when not nil, is called with the count of entries written every 1,000 entries and with
// the total it expects first (total may be 0 when unknown). A cancelled ctx (a client that went
// away) stops the query.
func Export(ctx context.Context, pool *pgxpool.Pool, w io.Writer, f Format, rng Range, progress func(done, total int64)) (Summary, error) {
	sum := Summary{Format: f, Sums: map[string]Sums{}}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return sum, fmt.Errorf("begin the export's snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	head, _, err := ledger.ChainHead(ctx, tx)
	if err != nil {
		return sum, err
	}
	sum.ChainHeadSeq = head
	if sum.Unsealed, err = ledger.UnsealedIn(ctx, tx); err != nil {
		return sum, err
	}
	from, to := max(rng.FromSeq, 1), head
	if rng.ToSeq > 0 {
		to = min(to, rng.ToSeq)
	}
	if !rng.From.IsZero() || !rng.To.IsZero() {
		f, t, ok, err := ledger.SeqRange(ctx, tx, rng.From, rng.To)
		if err != nil {
			return sum, err
		}
		if !ok {
			from, to = 1, 0
		} else {
			from, to = max(from, f), min(to, t)
		}
	}
	var ew writer
	switch f {
	case JSONL:
		ew = &jsonlWriter{w: w}
	case CSV:
		ew = newCSVWriter(w)
	case HLedger:
		ew = &hledgerWriter{wrapped: w}
	default:
		return sum, fmt.Errorf("unknown format %q", f)
	}
	if to >= from {
		sum.FromSeq, sum.ToSeq = from, to
	}
	if err := ew.Begin(&sum); err != nil {
		return sum, err
	}
	if progress != nil {
		progress(0, max(to-from+1, 0))
	}
	debit, credit := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	if to >= from {
		err = ledger.StreamSealed(ctx, tx, from, to, func(se ledger.SealedEntry) error {
			if sum.Entries == 0 {
				sum.StartPrevHash = hex.EncodeToString(se.PrevHash)
			}
			sum.Entries++
			sum.LastHash = hex.EncodeToString(se.Hash)
			for _, p := range se.Entry.Postings {
				sum.Postings++
				c := string(p.Amount.Currency())
				if p.Side == ledger.Debit {
					debit[c] = debit[c].Add(p.Amount.Decimal())
				} else {
					credit[c] = credit[c].Add(p.Amount.Decimal())
				}
			}
			if progress != nil && sum.Entries%1000 == 0 {
				progress(sum.Entries, 0)
			}
			return ew.Entry(se)
		})
		if err != nil {
			return sum, err
		}
	}
	sum.Sums = sumsOf(debit, credit)
	if progress != nil {
		progress(sum.Entries, 0)
	}
	return sum, ew.End(&sum)
}

func sumsOf(debit, credit map[string]decimal.Decimal) map[string]Sums {
	out := map[string]Sums{}
	var curs []string
	for c := range debit {
		curs = append(curs, c)
	}
	for c := range credit {
		if _, ok := debit[c]; !ok {
			curs = append(curs, c)
		}
	}
	sort.Strings(curs)
	for _, c := range curs {
		scale := money.Currency(c).Scale()
		out[c] = Sums{Debit: money.FormatFixed(debit[c], scale), Credit: money.FormatFixed(credit[c], scale)}
	}
	return out
}
