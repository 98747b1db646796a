-- name: BalanceShardsInsert :exec
-- BalanceShardsInsert creates an account's balance rows (one, or one per shard of a hot account).
INSERT INTO account_balances (account_id, shard, allow_negative)
SELECT sqlc.arg(account_id)::bigint, s.n::smallint, sqlc.arg(allow_negative)::boolean
FROM generate_series(0, sqlc.arg(shard_count)::int - 1) AS s(n)
ON CONFLICT (account_id, shard) DO NOTHING;

-- name: BalanceApplyDeltas :many
-- BalanceApplyDeltas adds each delta to its balance row. The rows are locked in (account_id, shard)
-- order before they are updated, so two transactions touching the same accounts cannot deadlock on them.
WITH deltas AS (
  SELECT d.account_id, d.shard, sum(d.delta) AS delta
  FROM (SELECT unnest(@account_ids::bigint[]) AS account_id, unnest(@shards::smallint[]) AS shard,
               unnest(@deltas::numeric[]) AS delta) d
  GROUP BY d.account_id, d.shard
), locked AS (
  SELECT b.account_id, b.shard
  FROM account_balances b
  JOIN deltas d ON d.account_id = b.account_id AND d.shard = b.shard
  ORDER BY b.account_id, b.shard
  FOR UPDATE OF b
)
UPDATE account_balances b
SET balance = b.balance + d.delta
FROM deltas d, locked l
WHERE b.account_id = d.account_id AND b.shard = d.shard
  AND l.account_id = b.account_id AND l.shard = b.shard
RETURNING b.account_id, b.shard, b.balance;

-- name: BalanceCurrent :one
SELECT coalesce(sum(balance), 0)::numeric AS balance
FROM account_balances
WHERE account_id = @account_id;

-- name: BalanceAsOf :one
-- BalanceAsOf recomputes an account's balance from its postings recorded at or before as_of, on the
-- account's normal side.
SELECT coalesce(sum(CASE WHEN p.side = 'debit' THEN p.amount ELSE -p.amount END), 0)::numeric AS debit_minus_credit
FROM postings p
WHERE p.account_id = @account_id AND p.recorded_at <= @as_of;

-- name: BalanceTrialCurrent :many
-- BalanceTrialCurrent is the trial balance from the cached balances.
SELECT a.id, a.code, a.currency, a.kind, coalesce(sum(b.balance), 0)::numeric AS balance
FROM accounts a
JOIN account_balances b ON b.account_id = a.id
GROUP BY a.id
ORDER BY a.currency, a.code;

-- name: BalanceTrialAsOf :many
-- BalanceTrialAsOf is the trial balance recomputed from postings recorded at or before as_of.
SELECT a.id, a.code, a.currency, a.kind,
       sum(CASE WHEN p.side = 'debit' THEN p.amount ELSE -p.amount END)::numeric AS debit_minus_credit
FROM postings p
JOIN accounts a ON a.id = p.account_id
WHERE p.recorded_at <= @as_of
GROUP BY a.id
ORDER BY a.currency, a.code;

-- name: BalanceVerifyAll :many
-- BalanceVerifyAll lists every account's cached balance beside the balance recomputed from postings.
SELECT a.id, a.code, a.currency, a.kind, a.allow_negative,
       coalesce((SELECT sum(b.balance) FROM account_balances b WHERE b.account_id = a.id), 0)::numeric AS cached,
       coalesce((SELECT sum(CASE WHEN p.side = 'debit' THEN p.amount ELSE -p.amount END)
                   FROM postings p WHERE p.account_id = a.id), 0)::numeric AS debit_minus_credit
FROM accounts a
ORDER BY a.id;
