-- name: AccountInsert :one
-- AccountInsert creates an account if it does not exist; it returns no row when it already did.
INSERT INTO accounts (code, currency, kind, allow_negative, shards)
VALUES (@code, @currency, @kind, @allow_negative, @shards)
ON CONFLICT (code, currency) DO NOTHING
RETURNING id;

-- name: AccountGetByCode :one
SELECT id, code, currency, kind, allow_negative, shards, created_at
FROM accounts
WHERE code = @code AND currency = @currency;

-- name: AccountListByCode :many
SELECT id, code, currency, kind, allow_negative, shards, created_at
FROM accounts
WHERE code = @code
ORDER BY currency;

-- name: AccountInsertMany :exec
-- AccountInsertMany creates many plain (one-shard) accounts and their balance rows at once.
WITH new_accounts AS (
  INSERT INTO accounts (code, currency, kind, allow_negative, shards)
  SELECT unnest(@codes::text[]), @currency::text, @kind::text, @allow_negative::boolean, 1
  ON CONFLICT (code, currency) DO NOTHING
  RETURNING id, allow_negative
)
INSERT INTO account_balances (account_id, shard, allow_negative)
SELECT id, 0, allow_negative FROM new_accounts;

-- name: AccountListByCodes :many
-- AccountListByCodes reads many accounts in one round trip (all currencies; callers filter).
-- created_here is true for rows this transaction wrote, which may still roll back.
SELECT id, code, currency, kind, allow_negative, shards,
       coalesce(xmin = pg_current_xact_id_if_assigned()::xid, false)::boolean AS created_here
FROM accounts
WHERE code = ANY(@codes::text[]);

-- name: AccountCodesByIDs :many
SELECT id, code FROM accounts WHERE id = ANY(@ids::bigint[]);

-- name: AccountListNewest :many
SELECT id, code, currency, kind, allow_negative, shards
FROM accounts
ORDER BY id DESC
LIMIT @max_accounts;
