-- name: APIKeyInsert :one
INSERT INTO api_keys (name, role, key_hash)
VALUES (@name, @role, @key_hash)
RETURNING id, name, role, created_at;

-- name: APIKeyGetByHash :one
SELECT id, name, role
FROM api_keys
WHERE key_hash = @key_hash AND revoked_at IS NULL;

-- name: MemberTokenInsert :exec
INSERT INTO member_tokens (token_hash, member_id, issued_by, expires_at)
VALUES (@token_hash, @member_id, @issued_by, @expires_at);

-- name: MemberTokenGet :one
SELECT member_id, expires_at
FROM member_tokens
WHERE token_hash = @token_hash AND expires_at > now();
