-- name: APIKeyInsert :one
INSERT INTO api_keys (name, role, key_hash)
VALUES (@name, @role, @key_hash)
RETURNING id, name, role, created_at;

-- name: APIKeyGetByHash :one
SELECT id, name, role
FROM api_keys
WHERE key_hash = @key_hash AND revoked_at IS NULL;

-- name: APIKeyList :many
SELECT id, name, role, created_at, revoked_at
FROM api_keys
ORDER BY id;

-- name: APIKeyRevoke :one
-- APIKeyRevoke revokes a key once: revoking it again keeps the first time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = @id
RETURNING id, name, role, created_at, revoked_at;

-- name: MemberTokenInsert :exec
INSERT INTO member_tokens (token_hash, member_id, issued_by, expires_at)
VALUES (@token_hash, @member_id, @issued_by, @expires_at);

-- name: MemberTokenGet :one
-- A token dies with the key that issued it.
SELECT t.member_id, t.expires_at
FROM member_tokens t
JOIN api_keys k ON k.id = t.issued_by
WHERE t.token_hash = @token_hash AND t.expires_at > now() AND k.revoked_at IS NULL;
