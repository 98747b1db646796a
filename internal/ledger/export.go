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

// SealedEntry is one link of the hash chain with its entry: Hash = ChainHash(PrevHash,
// CanonicalJSON(Entry)) for an entry that is as it was sealed.
type SealedEntry struct {
	Seq      int64
	PrevHash []byte
	Hash     []byte
	Entry    Entry
}

// ChainHead is the newest link: its seq and hash (0 and GenesisHash for an empty chain).
func ChainHead(ctx context.Context, db store.DBTX) (int64, []byte, error) {
	last, err := store.New(db).SealLast(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, GenesisHash, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read the chain's head: %w", err)
	}
	return last.Seq, last.Hash, nil
}

// SeqRange maps a period of recorded_at to the contiguous stretch of the chain from the first
// entry recorded at or after from to the last recorded before to (zero times are open ends). The
// chain follows commit order, so the stretch may hold a few entries recorded just outside the
// period at its edges: a stretch must be contiguous to verify on its own. ok is false when no
// sealed entry falls in the period.
func SeqRange(ctx context.Context, db store.DBTX, from, to time.Time) (fromSeq, toSeq int64, ok bool, err error) {
	r, err := store.New(db).SealSeqRange(ctx, sqlc.SealSeqRangeParams{FromAt: from, ToAt: to})
	if err != nil {
		return 0, 0, false, fmt.Errorf("map the period to the chain: %w", err)
	}
	if r.FromSeq == 0 {
		return 0, 0, false, nil
	}
	return r.FromSeq, r.ToSeq, true, nil
}

// streamSealedSQL reads a stretch of the chain with its entries and postings in chain order, one
// row per posting. It is not a generated query: sqlc's :many reads a whole result into memory, and
// this one is read row by row while PostgreSQL produces it (constant memory, and PostgreSQL and the
// encoder work at once). Every join is a primary-key lookup in seq order: no sort.
const streamSealedSQL = `
SELECT s.seq, s.prev_hash, s.hash, e.id, e.idempotency_key, e.kind, e.occurred_at, e.recorded_at, e.metadata, e.refers_to,
       p.id, p.account_id, a.code, p.currency, p.side, p.amount
FROM entry_seals s
JOIN entries e ON e.id = s.entry_id
JOIN postings p ON p.entry_id = e.id
JOIN accounts a ON a.id = p.account_id
WHERE s.seq BETWEEN $1 AND $2
ORDER BY s.seq, p.id`

// StreamSealed calls fn for every sealed entry with fromSeq <= seq <= toSeq, in chain order, from
// one query read as it arrives, so memory stays flat however long the chain. Run it in one
// REPEATABLE READ transaction for a single snapshot. fn's error stops the stream and is returned.
func StreamSealed(ctx context.Context, db store.DBTX, fromSeq, toSeq int64, fn func(SealedEntry) error) error {
	rows, err := db.Query(ctx, streamSealedSQL, fromSeq, toSeq)
	if err != nil {
		return fmt.Errorf("read the chain from %d: %w", fromSeq, err)
	}
	defer rows.Close()
	var cur SealedEntry
	have := false
	var (
		seq, entryID, postingID, accountID int64
		prevHash, hash, metadata           []byte
		key, kind, code, currency, side    string
		occurredAt, recordedAt             time.Time
		refersTo                           *int64
		amount                             decimal.Decimal
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &prevHash, &hash, &entryID, &key, &kind, &occurredAt, &recordedAt, &metadata, &refersTo,
			&postingID, &accountID, &code, &currency, &side, &amount); err != nil {
			return fmt.Errorf("read the chain: %w", err)
		}
		if !have || seq != cur.Seq {
			if have {
				if err := fn(cur); err != nil {
					return err
				}
			}
			cur = SealedEntry{Seq: seq, PrevHash: prevHash, Hash: hash, Entry: Entry{ID: entryID, Key: key, Kind: kind,
				OccurredAt: occurredAt, RecordedAt: recordedAt, Metadata: metadata, RefersTo: deref(refersTo)}}
			have = true
		}
		amt, _ := money.New(amount, money.Currency(currency))
		cur.Entry.Postings = append(cur.Entry.Postings, Posting{ID: postingID, Account: code, Side: Side(side), Amount: amt,
			currency: money.Currency(currency), exact: amount, accountID: accountID})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the chain: %w", err)
	}
	if have {
		return fn(cur)
	}
	return nil
}

// SeqAsOf is the chain seq a balance as of an instant corresponds to: the last sealed entry
// recorded at or before it (0 when none).
func SeqAsOf(ctx context.Context, db store.DBTX, asOf time.Time) (int64, error) {
	_, to, _, err := SeqRange(ctx, db, time.Time{}, asOf.Add(time.Microsecond))
	return to, err
}
