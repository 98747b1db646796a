-- name: IdempotencyClaim :one
-- IdempotencyClaim takes a client id for a request. A concurrent transaction that took the same id
-- makes this wait until it ends; then nothing is inserted (no row) if it committed.
INSERT INTO idempotency_keys (scope, key, request_hash)
VALUES (@scope, @key, @request_hash)
ON CONFLICT (scope, key) DO NOTHING
RETURNING true AS claimed;

-- name: IdempotencyGet :one
SELECT request_hash, answer
FROM idempotency_keys
WHERE scope = @scope AND key = @key;

-- name: IdempotencyComplete :exec
UPDATE idempotency_keys SET answer = @answer
WHERE scope = @scope AND key = @key AND answer IS NULL;

-- name: IdempotencyGetMany :many
-- IdempotencyGetMany is IdempotencyGet for a group of keys of one scope (idem.DoManyAfterLock).
SELECT key, request_hash, answer
FROM idempotency_keys
WHERE scope = @scope AND key = ANY(@keys::text[]);

-- name: IdempotencyInsertMany :exec
-- IdempotencyInsertMany records a group's requests and their answers at once (idem.DoManyAfterLock:
-- the callers' locks serialise duplicates, so there is no claim to take first).
INSERT INTO idempotency_keys (scope, key, request_hash, answer)
SELECT @scope, unnest(@keys::text[]), unnest(@hashes::bytea[]), unnest(@answers::bytea[]);
