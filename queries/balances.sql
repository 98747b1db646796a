-- name: BalanceShardsInsert :exec
-- BalanceShardsInsert creates an account's balance rows (one, or one per shard of a hot account).
INSERT INTO account_balances (account_id, shard, allow_negative)
SELECT sqlc.arg(account_id)::bigint, s.n::smallint, sqlc.arg(allow_negative)::boolean
FROM generate_series(0, sqlc.arg(shard_count)::int - 1) AS s(n)
ON CONFLICT (account_id, shard) DO NOTHING;

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

-- name: BalanceLockMany :exec
-- BalanceLockMany locks balance rows in (account_id, shard) order, the fixed order every writer
-- uses, so two transactions touching the same accounts cannot deadlock on them, before
-- BalanceAddMany updates them all in one statement (whose join order is the planner's).
SELECT 1
FROM account_balances
WHERE (account_id, shard) IN (SELECT unnest(@account_ids::bigint[]), unnest(@shards::smallint[]))
ORDER BY account_id, shard
FOR NO KEY UPDATE;

-- name: BalanceAddMany :many
UPDATE account_balances b SET balance = b.balance + v.delta
FROM (SELECT unnest(@account_ids::bigint[]) AS account_id, unnest(@shards::smallint[]) AS shard,
             unnest(@deltas::numeric[]) AS delta) v
WHERE b.account_id = v.account_id AND b.shard = v.shard
RETURNING b.account_id, b.shard, b.balance;

-- name: BalanceVerifyAccounts :many
-- BalanceVerifyAccounts is BalanceVerifyAll for the accounts named.
SELECT a.id, a.code, a.currency, a.kind,
       coalesce((SELECT sum(b.balance) FROM account_balances b WHERE b.account_id = a.id), 0)::numeric AS cached,
       coalesce((SELECT sum(CASE WHEN p.side = 'debit' THEN p.amount ELSE -p.amount END)
                   FROM postings p WHERE p.account_id = a.id), 0)::numeric AS debit_minus_credit
FROM accounts a
WHERE a.id = ANY(@ids::bigint[])
ORDER BY a.id;

-- name: PlatformMovements :many
-- PlatformMovements totals the platform accounts' postings recorded in [from_at, to_at) by account,
-- currency and side (an index range per account: postings_account_recorded_idx).
SELECT a.code, a.currency, p.side, sum(p.amount)::numeric AS total
FROM accounts a
JOIN postings p ON p.account_id = a.id AND p.recorded_at >= @from_at AND p.recorded_at < @to_at
WHERE a.code LIKE 'platform:%' AND (@currency::text = '' OR a.currency = @currency::text)
GROUP BY a.code, a.currency, p.side;

-- name: BalanceByCodes :many
-- BalanceByCodes is BalanceByCode for several (code, currency) pairs at once; a pair whose account
-- was never used is absent (its balance is zero).
SELECT a.code, a.currency, sum(b.balance)::numeric AS balance
FROM accounts a
JOIN account_balances b ON b.account_id = a.id
WHERE (a.code, a.currency) IN (SELECT unnest(@codes::text[]), unnest(@currencies::text[]))
GROUP BY a.code, a.currency;
