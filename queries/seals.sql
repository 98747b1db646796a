-- name: SealLast :one
-- SealLast is the newest link of the hash chain; the chain is empty when no row is returned.
SELECT seq, entry_id, entry_txid::text::bigint AS entry_txid, hash
FROM entry_seals
ORDER BY seq DESC
LIMIT 1;

-- name: SealCandidates :many
-- SealCandidates lists the next entries to seal, in (txid, id) order after the cursor, taking only
-- entries of transactions older than every transaction still running: those are all committed, so no
-- entry that sorts before them can still appear. It returns what the seal hashes of each entry
-- (the postings come from PostingListForSealing).
SELECT id, txid::text::bigint AS txid, idempotency_key, kind, occurred_at, recorded_at, metadata, refers_to
FROM entries
WHERE (txid, id) > (CAST(@after_txid::text AS xid8), @after_id::bigint)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY entries.txid, entries.id
LIMIT @max_entries;

-- name: SealInsertMany :exec
INSERT INTO entry_seals (seq, entry_id, entry_txid, prev_hash, hash)
SELECT unnest(@seqs::bigint[]), unnest(@entry_ids::bigint[]), CAST(unnest(@txids::text[]) AS xid8),
       unnest(@prev_hashes::bytea[]), unnest(@hashes::bytea[]);

-- name: SealList :many
SELECT seq, entry_id, entry_txid::text::bigint AS entry_txid, prev_hash, hash
FROM entry_seals
WHERE seq > @after_seq
ORDER BY seq
LIMIT @max_seals;

-- name: SealBacklog :one
-- SealBacklog counts the entries after the chain's cursor (committed or still running), and the
-- recorded_at of the oldest of them.
SELECT count(*) AS unsealed, coalesce(min(recorded_at), now())::timestamptz AS oldest
FROM entries
WHERE (txid, id) > (CAST(@after_txid::text AS xid8), @after_id::bigint);

-- name: EntryGetManyByIDs :many
SELECT id, idempotency_key, request_hash, kind, occurred_at, recorded_at, metadata, refers_to
FROM entries
WHERE id = ANY(@ids::bigint[])
ORDER BY id;

-- name: SealSeqRange :one
-- SealSeqRange is the first and last seq of the sealed entries recorded in [from_at, to_at) (a zero
-- time is an open end); 0, 0 when there are none.
SELECT coalesce(min(s.seq), 0)::bigint AS from_seq, coalesce(max(s.seq), 0)::bigint AS to_seq
FROM entry_seals s
JOIN entries e ON e.id = s.entry_id
WHERE (@from_at::timestamptz = '0001-01-01T00:00:00Z' OR e.recorded_at >= @from_at::timestamptz)
  AND (@to_at::timestamptz = '0001-01-01T00:00:00Z' OR e.recorded_at < @to_at::timestamptz);

-- name: SealGet :one
SELECT seq, entry_id, entry_txid::text::bigint AS entry_txid, prev_hash, hash
FROM entry_seals
WHERE seq = @seq;
