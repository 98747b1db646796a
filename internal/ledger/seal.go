package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/metrics"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// sealLockID serialises sealers across processes; the chain's primary key would refuse a fork anyway.
const sealLockID = 7_234_002

// SealBatch is how many entries one sealing transaction covers.
const SealBatch = 2000

// GenesisHash is the prev_hash of the first seal.
var GenesisHash = make([]byte, 32)

// CanonicalJSON is the entry's canonical encoding, the input of its seal hash; exports carry the
// same form, so a copy of the journal can be verified offline. It is the bytes encoding/json wrote
// for struct{id, idempotency_key, kind, occurred_at, recorded_at, refers_to, metadata, postings}:
// fields in that order, metadata keys sorted, times in UTC with microseconds, amounts as decimal
// strings at the currency's scale (canonical.go; tests compare it with Marshal).
func CanonicalJSON(e Entry) ([]byte, error) {
	var meta any = map[string]any{}
	if len(e.Metadata) > 0 {
		dec := json.NewDecoder(bytesReader(e.Metadata))
		dec.UseNumber()
		if err := dec.Decode(&meta); err != nil {
			return nil, fmt.Errorf("entry %d metadata: %w", e.ID, err)
		}
	}
	ps := make([]canonicalPosting, 0, len(e.Postings))
	for _, p := range e.Postings {
		cp := canonicalPosting{Account: p.Account, Side: p.Side}
		if p.currency != "" {
			scale := p.currency.Scale()
			cp.Currency = string(p.currency)
			if p.exact.Exponent() >= -scale || p.exact.Equal(p.exact.Truncate(scale)) {
				cp.Amount = money.FormatFixed(p.exact, scale)
			} else {
				cp.Amount = p.exact.String() // more decimals than the currency has: kept as stored
			}
		} else {
			cp.Currency = string(p.Amount.Currency())
			cp.Amount = p.Amount.String()
		}
		ps = append(ps, cp)
	}
	b := make([]byte, 0, 256+128*len(ps)+len(e.Metadata))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"idempotency_key":`...)
	b = appendJSONString(b, e.Key)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.Kind)
	b = append(b, `,"occurred_at":`...)
	b = appendJSONTime(b, e.OccurredAt)
	b = append(b, `,"recorded_at":`...)
	b = appendJSONTime(b, e.RecordedAt)
	b = append(b, `,"refers_to":`...)
	b = strconv.AppendInt(b, e.RefersTo, 10)
	b = append(b, `,"metadata":`...)
	b, err := appendJSONValue(b, meta)
	if err != nil {
		return nil, fmt.Errorf("entry %d metadata: %w", e.ID, err)
	}
	b = append(b, `,"postings":`...)
	b = appendJSONPostings(b, ps)
	return append(b, '}'), nil
}

// ChainHash is SHA-256(prev || canonical).
func ChainHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// Seal extends the hash chain over the next committed entries, in (txid, id) order, and returns
// how many it sealed. It only takes entries of transactions older than every transaction still
// running, so an entry that commits late can never be skipped: it sorts after the chain's cursor
// (docs/decisions/0003-sealing-order.md). Safe to run from several processes at once.
func (l *Ledger) Seal(ctx context.Context, max int) (int, error) {
	var n int
	err := store.WithTx(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", sealLockID); err != nil {
			return err
		}
		q := store.New(tx)
		// Generic plans: a custom plan for the postings of 2,000 entries was a parallel scan of
		// every posting on a journal of a few hundred thousand (50 ms a round, growing with it).
		if err := q.SessionGenericPlans(ctx); err != nil {
			return err
		}
		prev, seq, afterTxid, afterID, err := chainHead(ctx, q)
		if err != nil {
			return err
		}
		cands, err := q.SealCandidates(ctx, sqlc.SealCandidatesParams{AfterTxid: strconv.FormatInt(afterTxid, 10), AfterID: afterID, MaxEntries: int32(max)})
		if err != nil {
			return fmt.Errorf("seal candidates: %w", err)
		}
		if len(cands) > 0 {
			entries, err := l.loadEntriesForSealing(ctx, tx, cands)
			if err != nil {
				return err
			}
			var p sqlc.SealInsertManyParams
			for i, c := range cands {
				canon, err := CanonicalJSON(entries[i])
				if err != nil {
					return err
				}
				hash := ChainHash(prev, canon)
				seq++
				p.Seqs = append(p.Seqs, seq)
				p.EntryIds = append(p.EntryIds, c.ID)
				p.Txids = append(p.Txids, strconv.FormatInt(c.Txid, 10))
				p.PrevHashes = append(p.PrevHashes, prev)
				p.Hashes = append(p.Hashes, hash)
				prev = hash
				afterTxid, afterID = c.Txid, c.ID
			}
			if err := q.SealInsertMany(ctx, p); err != nil {
				return fmt.Errorf("insert seals: %w", err)
			}
		}
		n = len(cands)
		backlog, err := q.SealBacklog(ctx, sqlc.SealBacklogParams{AfterTxid: strconv.FormatInt(afterTxid, 10), AfterID: afterID})
		if err != nil {
			return fmt.Errorf("seal backlog: %w", err)
		}
		var lag time.Duration
		if backlog.Unsealed > 0 {
			lag = time.Since(backlog.Oldest)
		}
		metrics.Sealed(n, backlog.Unsealed, lag)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// SealAll seals until nothing committed is left unsealed.
func (l *Ledger) SealAll(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := l.Seal(ctx, SealBatch)
		total += n
		if err != nil || n < SealBatch {
			return total, err
		}
	}
}

// chainHead reads the newest seal: its hash, its seq and the cursor it leaves.
func chainHead(ctx context.Context, q *store.Queries) (prev []byte, seq, txid, id int64, err error) {
	last, err := q.SealLast(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return GenesisHash, 0, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read chain head: %w", err)
	}
	return last.Hash, last.Seq, last.EntryTxid, last.EntryID, nil
}

// Unsealed counts the entries after the chain's head: committed ones waiting for older
// transactions to finish, and ones whose transaction is still running.
func (l *Ledger) Unsealed(ctx context.Context) (int64, error) { return UnsealedIn(ctx, l.pool) }

// UnsealedIn is Unsealed read in db (a transaction's snapshot).
func UnsealedIn(ctx context.Context, db store.DBTX) (int64, error) {
	q := store.New(db)
	_, _, txid, id, err := chainHead(ctx, q)
	if err != nil {
		return 0, err
	}
	b, err := q.SealBacklog(ctx, sqlc.SealBacklogParams{AfterTxid: strconv.FormatInt(txid, 10), AfterID: id})
	if err != nil {
		return 0, fmt.Errorf("seal backlog: %w", err)
	}
	return b.Unsealed, nil
}
