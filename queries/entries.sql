-- name: EntryPostMany :many
-- EntryPostMany writes entries whose idempotency key is new, their postings, and (when given) the
-- balance changes, in one statement (one round trip for a whole post). Keys that exist return no
-- row and get no postings; a concurrent writer of the same key is waited for, so a duplicate can
-- never produce two entries. Postings name their entry by its number in @keys (1-based) and are
-- numbered in request order. The balance changes are the batch's net change per balance row, in
-- (account_id, shard) order, the fixed lock order; they are applied only when every key is new
-- (when one is a replay no balance changes here, and the caller applies the new entries' changes
-- with BalanceAddMany). It returns one row per inserted entry (is_entry) and one per updated
-- balance row, with the new balance. Amounts and deltas arrive as decimal strings: pgx encodes a
-- numeric[] of decimals element by element through reflection and a wrapper; as text[] the process
-- spends ~4% less CPU per entry in --batch 100 runs.
WITH new_entries AS (
  INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at, metadata, refers_to)
  SELECT unnest(@keys::text[]), unnest(@hashes::bytea[]), unnest(@kinds::text[]),
         unnest(@occurred_ats::timestamptz[]), unnest(@metadatas::jsonb[]), nullif(unnest(@refers_tos::bigint[]), 0)
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id, idempotency_key, recorded_at
), inserted AS (
  -- each inserted entry with its number in @keys
  SELECT e.id, e.recorded_at, k.n::int AS n
  FROM new_entries e
  JOIN unnest(@keys::text[]) WITH ORDINALITY AS k(key, n) ON k.key = e.idempotency_key
), new_postings AS (
  INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
  SELECT e.id, p.account_id, p.currency, p.side, p.amount, e.recorded_at
  FROM (SELECT x.*, row_number() OVER () AS ord
          FROM (SELECT unnest(@posting_entries::int[]) AS n, unnest(@account_ids::bigint[]) AS account_id,
                       unnest(@currencies::text[]) AS currency, unnest(@sides::text[]) AS side,
                       unnest(@amounts::text[])::numeric AS amount) x) p
  JOIN inserted e ON e.n = p.n
  ORDER BY p.ord
  RETURNING 1
), balances AS (
  -- the batch's net change per balance row, applied only when every entry of the batch is new
  UPDATE account_balances b SET balance = b.balance + d.delta
  FROM (SELECT unnest(@delta_account_ids::bigint[]) AS account_id, unnest(@delta_shards::smallint[]) AS shard,
               unnest(@deltas::text[])::numeric AS delta) d
  WHERE b.account_id = d.account_id AND b.shard = d.shard
    AND (SELECT count(*) FROM new_entries) = cardinality(@keys::text[])
  RETURNING b.account_id, b.shard, b.balance
)
SELECT true AS is_entry, e.id, e.idempotency_key, e.recorded_at, 0::bigint AS account_id, 0::smallint AS shard, 0::numeric AS balance
FROM new_entries e
UNION ALL
SELECT false, 0::bigint, ''::text, now(), b.account_id, b.shard, b.balance
FROM balances b;

-- name: EntryPostOne :many
-- EntryPostOne is EntryPostMany for one entry, with a smaller plan: no joins on the key, no grouping.
-- PostgreSQL starts every node of a plan on every execution, and for one entry starting
-- EntryPostMany's plan cost more than its work. Each balance row comes once, and the caller sorts
-- them by (account_id, shard): the update joins them in that order, the fixed lock order. Its
-- answer has EntryPostMany's columns.
WITH new_entries AS (
  INSERT INTO entries (idempotency_key, request_hash, kind, occurred_at, metadata, refers_to)
  VALUES (@key::text, @hash::bytea, @kind::text, @occurred_at::timestamptz, @metadata::jsonb, nullif(@refers_to::bigint, 0))
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id, idempotency_key, recorded_at
), new_postings AS (
  INSERT INTO postings (entry_id, account_id, currency, side, amount, recorded_at)
  SELECT e.id, p.account_id, p.currency, p.side, p.amount, e.recorded_at
  FROM new_entries e,
       (SELECT unnest(@account_ids::bigint[]) AS account_id, unnest(@currencies::text[]) AS currency,
               unnest(@sides::text[]) AS side, unnest(@amounts::text[])::numeric AS amount,
               generate_series(1, cardinality(@account_ids::bigint[])) AS ord) p
  ORDER BY p.ord
  RETURNING 1
), balances AS (
  UPDATE account_balances b SET balance = b.balance + d.delta
  FROM new_entries e,
       (SELECT unnest(@delta_account_ids::bigint[]) AS account_id, unnest(@delta_shards::smallint[]) AS shard,
               unnest(@deltas::text[])::numeric AS delta) d
  WHERE b.account_id = d.account_id AND b.shard = d.shard
  RETURNING b.account_id, b.shard, b.balance
)
SELECT true AS is_entry, e.id, e.idempotency_key, e.recorded_at, 0::bigint AS account_id, 0::smallint AS shard, 0::numeric AS balance
FROM new_entries e
UNION ALL
SELECT false, 0::bigint, ''::text, now(), b.account_id, b.shard, b.balance
FROM balances b;

-- name: EntryGetByKeys :many
SELECT id, idempotency_key, request_hash, kind, occurred_at, recorded_at, metadata, refers_to
FROM entries
WHERE idempotency_key = ANY(@keys::text[]);

-- name: PostingListByEntries :many
-- The account code is looked up per posting by primary key: a join would let the planner scan
-- every account for a handful of postings.
SELECT p.id, p.entry_id, p.account_id, (SELECT a.code FROM accounts a WHERE a.id = p.account_id)::text AS code,
       p.currency, p.side, p.amount
FROM postings p
WHERE p.entry_id = ANY(@entry_ids::bigint[])
ORDER BY p.entry_id, p.id;

-- name: PostingListForSealing :many
-- PostingListForSealing is PostingListByEntries with account ids: the sealer knows most codes
-- already (accounts never change), and looking a code up per posting was most of the sealer's cost.
SELECT p.id, p.entry_id, p.account_id, p.currency, p.side, p.amount
FROM postings p
WHERE p.entry_id = ANY(@entry_ids::bigint[])
ORDER BY p.entry_id, p.id;
