-- name: APIKeyInsert :one
INSERT INTO api_keys (name, role, key_hash)
VALUES (@name, @role, @key_hash)
RETURNING id, name, role, created_at;

-- name: APIKeyGetByHash :one
SELECT id, name, role
FROM api_keys
WHERE key_hash = @key_hash AND revoked_at IS NULL;
