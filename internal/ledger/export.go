package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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

// StreamSealed calls fn for every sealed entry with fromSeq <= seq <= toSeq, in chain order,
// reading SealBatch links at a time, so memory stays flat however long the chain. Run it in one
// REPEATABLE READ transaction for a single snapshot. fn's error stops the stream and is returned.
func StreamSealed(ctx context.Context, db store.DBTX, fromSeq, toSeq int64, fn func(SealedEntry) error) error {
	q := store.New(db)
	after := fromSeq - 1
	for after < toSeq {
		seals, err := q.SealList(ctx, sqlc.SealListParams{AfterSeq: after, MaxSeals: int32(min(int64(SealBatch), toSeq-after))})
		if err != nil {
			return fmt.Errorf("read seals after %d: %w", after, err)
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
		byID := make(map[int64]Entry, len(entries))
		for _, e := range entries {
			byID[e.ID] = e
		}
		for _, s := range seals {
			e, ok := byID[s.EntryID]
			if !ok {
				return fmt.Errorf("seal %d names entry %d, which is missing", s.Seq, s.EntryID)
			}
			if err := fn(SealedEntry{Seq: s.Seq, PrevHash: s.PrevHash, Hash: s.Hash, Entry: e}); err != nil {
				return err
			}
			after = s.Seq
		}
	}
	return nil
}

// SeqAsOf is the chain seq a balance as of an instant corresponds to: the last sealed entry
// recorded at or before it (0 when none).
func SeqAsOf(ctx context.Context, db store.DBTX, asOf time.Time) (int64, error) {
	_, to, _, err := SeqRange(ctx, db, time.Time{}, asOf.Add(time.Microsecond))
	return to, err
}
